from __future__ import annotations

from typing import Any

import pytest

import elspeth_llm_bedrock.sdk  # noqa: F401  # import boto3 now, not inside the first call's short timeout
from elspeth_testing.llm_server import LLMTestServer

ACCESS_KEY = "AKIATESTNOTASECRET01"
SECRET_KEY = "bedrock-test-secret-key-not-a-secret-0001"
AWS_ENV = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_SESSION_TOKEN",
    "AWS_ROLE_ARN",
)


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> str:
    """Credentials through the standard chain's first link, the environment; no file, no instance metadata."""
    for name in AWS_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return ACCESS_KEY


@pytest.fixture
def keyed_server(llm_server: LLMTestServer, aws_env: str) -> LLMTestServer:
    llm_server.configure(api_key=aws_env)
    return llm_server


@pytest.fixture
def options(keyed_server: LLMTestServer) -> dict[str, Any]:
    return {"model": "anthropic.claude-test-v1:0", "region": "eu-west-1", "endpoint_url": keyed_server.url}
