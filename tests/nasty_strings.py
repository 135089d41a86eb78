"""Text that breaks naive JSON, prompt formatting or chat templates, shared by the data-plane and
provider tests (pytest puts this folder on sys.path through tests/conftest.py)."""

NASTY = [
    'say "hi"',
    "back\\slash \\n not a newline",
    "line one\nline two\r\nthree",
    "tab\there",
    "ctl \x00\x01\x07\x08\x0b\x0c\x1b\x1f\x7f end",
    "emoji 😀🎉 and flags 🇩🇪",
    "non-ASCII: naïve café Ærøskøbing 東京 Привет",
    "\u2028 line sep \u2029 para sep",
    "{not a placeholder} {{double}}",
    "</script><!-- --> <|eot_id|> [/INST]",
    "trailing backslash \\",
    " leading space",
]
