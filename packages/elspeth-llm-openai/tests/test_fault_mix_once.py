"""On the fault mix (429 with Retry-After, 500, hangs, dropped connections), default retry: every row answered once."""

from __future__ import annotations

from collections import Counter

from elspeth.config import load_settings
from elspeth.engine import run_settings
from elspeth_testing import build_registry
from elspeth_testing.plugin import WriteSettings

ROWS = 150
SETTINGS = """\
name: faults
datasource: {plugin: csv, options: {path: rows.csv, id_column: id}}
llm:
  plugin: openai
  options: {model: gpt-test, base_url: BASE_URL, api_key_env: OPENAI_TEST_KEY}
retry: {stall_min_s: 0.5}
prompts: {user: 'Row {{ n }}'}
orchestrator: rows
concurrency: 16
output_dir: out
"""


def test_every_row_is_answered_once_and_no_prompt_twice_through_the_fault_mix(
    llm_server_factory, write_settings: WriteSettings, monkeypatch
) -> None:
    server = llm_server_factory(
        latency_ms=20, rate_429=0.2, retry_after_s=0.2, rate_500=0.05, rate_hang=0.03, rate_drop=0.03, seed=7
    )
    monkeypatch.setenv("OPENAI_TEST_KEY", "sk-test")
    rows = "id,n\n" + "".join(f"r{i},{i}\n" for i in range(ROWS))
    path = write_settings(SETTINGS.replace("BASE_URL", server.openai_base_url), {"rows.csv": rows})
    result = run_settings(load_settings(path), build_registry("elspeth_llm_openai.plugin"))

    assert [f.error for f in result.failures] == []
    assert sorted(r.row_id for r in result.records) == sorted(f"r{i}" for i in range(ROWS))
    outcomes = Counter(r.outcome for r in server.requests("chat/completions"))
    assert outcomes["hang"] + outcomes["client_gone"] >= 1, outcomes  # the mix really had hangs
    assert outcomes["429"] >= 1, outcomes
    assert outcomes["drop"] >= 1, outcomes
    assert max(server.successes_per_prompt().values()) == 1, "a prompt was answered twice"
