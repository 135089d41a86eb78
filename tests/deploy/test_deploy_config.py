"""deploy/dagster.yaml, deploy/dagster.k8s.yaml and deploy/workspace.yaml: schema, the run
launchers' own config schemas, drift between the two instance files, a real gRPC code server
behind workspace.yaml, and that the README documents every env var the files read.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
import yaml

from deploy_support import DEPLOY, REPO, grpc_code_server

ECS_ENV = {
    "AWS_REGION": "us-east-1",
    "AWS_DEFAULT_REGION": "us-east-1",
    "DAGSTER_RUN_TASK_ROLE_ARN": "arn:aws:iam::123456789012:role/dagster-runtime",
    "DAGSTER_RUN_EXECUTION_ROLE_ARN": "arn:aws:iam::123456789012:role/ecs-execution",
    "DAGSTER_RUN_LOG_GROUP": "/bedrock-assets/runs",
    "DAGSTER_COMPUTE_LOGS_BUCKET": "acme-dagster-logs",
    "DAGSTER_COMPUTE_LOGS_PREFIX": "compute-logs",
}


def _env_vars_in(path: Path) -> set[str]:
    return set(re.findall(r"\{env:\s*([A-Z0-9_]+)\}", path.read_text()))


def test_instance_files_match_the_dagster_instance_schema():
    from dagster._core.instance.config import dagster_instance_config

    for name in ("dagster.yaml", "dagster.k8s.yaml"):
        config, _ = dagster_instance_config(str(DEPLOY), name)
        assert config["telemetry"] == {"enabled": False}
        assert config["run_retries"]["retry_on_asset_or_op_failure"] is False
        assert config["run_monitoring"]["free_slots_after_run_end_seconds"] > 0
        assert config["concurrency"]["pools"] == {"default_limit": 20, "granularity": "op", "op_granularity_run_buffer": 0}
        assert config["compute_logs"]["class"] == "S3ComputeLogManager"
        assert config["storage"]["postgres"]["postgres_db"]["password"] == {"env": "DAGSTER_PG_PASSWORD"}


def test_k8s_variant_differs_only_in_the_run_launcher():
    ecs = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())
    k8s = yaml.safe_load((DEPLOY / "dagster.k8s.yaml").read_text())
    assert ecs["run_launcher"]["class"] == "EcsRunLauncher"
    assert k8s["run_launcher"]["class"] == "K8sRunLauncher"
    ecs.pop("run_launcher"), k8s.pop("run_launcher")
    assert ecs == k8s


def test_ecs_run_launcher_instantiates_from_the_production_block(monkeypatch):
    """Real EcsRunLauncher built from the file's config (env resolved); no AWS call is made."""
    from dagster._serdes.config_class import ConfigurableClassData
    from dagster_aws.ecs import EcsRunLauncher

    for k, v in ECS_ENV.items():
        monkeypatch.setenv(k, v)
    block = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["run_launcher"]
    launcher = ConfigurableClassData(block["module"], block["class"], yaml.safe_dump(block["config"])).rehydrate(EcsRunLauncher)
    assert launcher.task_role_arn == ECS_ENV["DAGSTER_RUN_TASK_ROLE_ARN"]
    assert launcher.use_current_ecs_task_config is True
    assert launcher.supports_resume_run  # fine either way: max_resume_run_attempts is 0 on purpose


def test_s3_compute_log_manager_instantiates_from_the_production_block(monkeypatch):
    from dagster._serdes.config_class import ConfigurableClassData
    from dagster_aws.s3.compute_log_manager import S3ComputeLogManager

    for k, v in ECS_ENV.items():
        monkeypatch.setenv(k, v)
    block = yaml.safe_load((DEPLOY / "dagster.yaml").read_text())["compute_logs"]
    manager = ConfigurableClassData(block["module"], block["class"], yaml.safe_dump(block["config"])).rehydrate(S3ComputeLogManager)
    assert manager._s3_bucket == "acme-dagster-logs"  # noqa: SLF001 - no public accessor
    assert manager._s3_prefix == "compute-logs"  # noqa: SLF001


def test_k8s_run_launcher_block_matches_its_schema():
    k8s = pytest.importorskip("dagster_k8s", reason="dagster-k8s not installed (only needed on Kubernetes)")
    from dagster._config import process_config

    block = yaml.safe_load((DEPLOY / "dagster.k8s.yaml").read_text())["run_launcher"]
    env = {
        "DAGSTER_K8S_INSTANCE_CONFIG_MAP": "dagster-instance",
        "DAGSTER_K8S_JOB_NAMESPACE": "bedrock-assets",
        "DAGSTER_K8S_RUN_SERVICE_ACCOUNT": "dagster-runtime",
        "DAGSTER_K8S_PG_PASSWORD_SECRET": "dagster-postgresql",
    }
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        result = process_config(k8s.K8sRunLauncher.config_type(), block["config"])
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    assert result.success, result.errors


def test_readme_documents_every_env_var_and_the_key_commands():
    readme = (DEPLOY / "README.md").read_text()
    used = set()
    for name in ("dagster.yaml", "dagster.k8s.yaml", "workspace.yaml"):
        used |= _env_vars_in(DEPLOY / name)
    missing = sorted(v for v in used if v not in readme)
    assert not missing, f"deploy/README.md does not document: {missing}"
    for needle in (
        "dagster instance concurrency set bedrock_batch 20",
        "dagster api grpc -m bedrock_assets.definitions",
        "dagster-daemon run",
        "dagster-webserver",
        "render_iam.py",
        "put-bucket-lifecycle-configuration",
        "outputs/",
        "PGSSLMODE",
    ):
        assert needle in readme, needle
    production = (REPO / "docs" / "production.md").read_text()
    for link in ("deploy/README.md", "deploy/dagster.yaml", "deploy/workspace.yaml", "deploy/render_iam.py"):
        assert link in production, link


def _load_workspace_location(port: int):
    """Load deploy/workspace.yaml exactly as the webserver/daemon would, return its one location."""
    from dagster._core.instance import DagsterInstance
    from dagster._core.workspace.context import WorkspaceProcessContext
    from dagster._core.workspace.load_target import WorkspaceFileTarget

    os.environ["DAGSTER_CODE_SERVER_HOST"] = "127.0.0.1"
    os.environ["DAGSTER_CODE_SERVER_PORT"] = str(port)
    with DagsterInstance.get() as instance:
        with WorkspaceProcessContext(instance, WorkspaceFileTarget(paths=[str(DEPLOY / "workspace.yaml")])) as ctx:
            request = ctx.create_request_context()
            entries = request.get_code_location_entries()
            assert list(entries) == ["bedrock_assets"]
            entry = entries["bedrock_assets"]
            assert entry.load_error is None, entry.load_error
            location = request.get_code_location("bedrock_assets")
            return {
                "jobs": sorted(j.name for repo in location.get_repositories().values() for j in repo.get_all_jobs()),
                "assets": sorted(
                    n.asset_key.to_user_string()
                    for repo in location.get_repositories().values()
                    for n in repo.get_asset_node_snaps()
                ),
            }


def test_workspace_yaml_reaches_a_real_grpc_code_server(pg_dagster_home, monkeypatch, tmp_path):
    """workspace.yaml -> a live `dagster api grpc` server; the location is named bedrock_assets."""
    monkeypatch.setenv("DAGSTER_CODE_SERVER_HOST", "127.0.0.1")
    _, env = pg_dagster_home
    pool_module = str(Path(__file__).with_name("test_deploy_postgres_pool.py"))
    with grpc_code_server(["-f", pool_module], env, tmp_path / "code_server.log") as port:
        monkeypatch.setenv("DAGSTER_CODE_SERVER_PORT", str(port))
        loaded = _load_workspace_location(port)
    assert "pooled_job" in loaded["jobs"]
    # The README's exact command (`-m bedrock_assets.definitions -a defs`) behind this same
    # workspace.yaml is exercised by test_deploy_full_flow_postgres.py.


def test_s3_lifecycle_is_a_valid_put_bucket_lifecycle_request():
    """botocore's own parameter validation (what `aws s3api put-bucket-lifecycle-configuration`
    runs client-side) accepts the file, and it expires the outputs/ prefix."""
    import json

    import botocore.session
    from botocore.validate import ParamValidator

    doc = json.loads((DEPLOY / "s3-lifecycle.json").read_text())
    model = botocore.session.get_session().get_service_model("s3")
    shape = model.operation_model("PutBucketLifecycleConfiguration").input_shape
    report = ParamValidator().validate({"Bucket": "acme-bedrock-assets", "LifecycleConfiguration": doc}, shape)
    assert not report.has_errors(), report.generate_report()
    outputs_rules = [r for r in doc["Rules"] if r["Filter"].get("Prefix") == "outputs/"]
    assert len(outputs_rules) == 1 and outputs_rules[0]["Status"] == "Enabled"
    assert 0 < outputs_rules[0]["Expiration"]["Days"] <= 90
