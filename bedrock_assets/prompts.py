"""Prompt templates, referenced from a batch spec by `prompt_id`.

Every `{name}` in a template must be a column of the input; `jsonl_shards` checks that before
any job is created. `question_answering` and `summarize` mirror the AWS
bedrock-batch-orchestrator sample (the same text the benchmark baseline formats), so speed is
compared on identical work.
"""

PROMPT_TEMPLATES: dict[str, str] = {
    "question_answering": """You are a careful assistant. Your job is to solve the task below and to show how you reached the answer.

    Write your step-by-step reasoning inside <thinking> tags first. Afterwards, give only the final answer inside <answer> tags. If the task is ambiguous, say which reading you chose. Keep the reasoning short and factual.

    Here is a worked example of the format we expect:

    <task>
    Read the two sentences and decide whether the second one follows from the first. Sentence 1: A man is playing a guitar on a stage in front of a crowd. Sentence 2: A person is performing music. Reply with yes, no or maybe.
    </task>

    <thinking>
    Playing a guitar on a stage in front of people is a way of performing music.
    A man is a person, so the second sentence is implied by the first.
    The answer is therefore yes.
    </thinking>

    <answer>yes</answer>

    Now it is your turn. Solve this task:

    <task>
    {source}
    </task>

    """,
    "summarize": """Summarize the following text in two sentences.

    <text>
    {source}
    </text>
    """,
}


PROMPT_TEMPLATES["joke"] = "Tell me a joke about {topic} in less than 50 words."
PROMPT_TEMPLATES["sentiment"] = (
    "Classify the sentiment of the following customer review as positive, negative or neutral. "
    "Answer with one word.\n\n<review>\n{review}\n</review>"
)


def get_template(prompt_id: str) -> str:
    try:
        return PROMPT_TEMPLATES[prompt_id]
    except KeyError:
        raise KeyError(
            f"unknown prompt_id {prompt_id!r}; known: {', '.join(sorted(PROMPT_TEMPLATES))}"
        ) from None
