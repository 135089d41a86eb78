"""`python -m bedrock_assets.emulator [flags]` (same as `bedrock-assets emulator`)."""

from .cli import main

raise SystemExit(main())
