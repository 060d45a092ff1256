"""The ``adaptive`` limiter finds a server's enforced capacity: a real run through the ``openai`` client.

The test server enforces N chat calls a second with 429s (``max_rps``, a token bucket). The limiter
starts far below N, doubles in slow start to the first 429, and then holds just under N: the
server's successes a second over the settled part of the run are within 10% of N and 429s stay
under 5% of all requests. Its history (rate over time, cuts) is in the run metadata.
"""

from __future__ import annotations

from elspeth.config import load_settings
from elspeth.engine import run_settings
from elspeth_testing import build_registry
from elspeth_testing.llm_server import LLMTestServer
from elspeth_testing.plugin import WriteSettings

N = 120
ROWS = 500
SETTINGS = """\
name: capacity
datasource: {plugin: csv, options: {path: rows.csv, id_column: id}}
llm:
  plugin: openai
  options: {model: gpt-test, base_url: BASE_URL, api_key_env: OPENAI_TEST_KEY}
rate_limiter: {plugin: adaptive}
retry: {max_attempts: 8, initial_delay_s: 0.01, max_delay_s: 0.2, timeout_s: 10}
prompts: {user: 'Row {{ n }}'}
orchestrator: rows
concurrency: 32
output_dir: out
"""


def test_adaptive_settles_near_an_enforced_capacity_with_few_429s(
    llm_server_factory, write_settings: WriteSettings, monkeypatch
) -> None:
    server: LLMTestServer = llm_server_factory(latency_ms=10, max_rps=N, process=True)
    monkeypatch.setenv("OPENAI_TEST_KEY", "sk-test")
    rows = "id,n\n" + "".join(f"r{i},{i}\n" for i in range(ROWS))
    path = write_settings(SETTINGS.replace("BASE_URL", server.openai_base_url), {"rows.csv": rows})
    result = run_settings(load_settings(path), build_registry("elspeth_llm_openai.plugin"))

    assert [f.error for f in result.failures] == []
    assert len(result.records) == ROWS
    chat = server.requests("chat/completions")
    ok = sorted(r.t for r in chat if r.outcome == "ok")
    limited = sum(1 for r in chat if r.outcome == "429")
    assert limited / len(chat) < 0.05, f"{limited} of {len(chat)} requests were 429"
    settled = [t for t in ok if t >= ok[0] + 1.5]  # "within a few seconds": from 1.5 s on
    rate = (len(settled) - 1) / (settled[-1] - settled[0])
    assert 0.9 * N <= rate <= 1.02 * N, f"settled at {rate:.1f} calls/s against a capacity of {N}"

    [lane] = result.metadata.to_dict()["rate_limiter"]["adaptive"].values()
    events = [h["event"] for h in lane["history"]]
    assert events[0] == "start"
    assert "slow start: doubled" in events
    assert lane["cuts"] >= 1
    assert lane["phase"] == "aimd"
    assert 0.8 * N <= lane["ceiling_rps"] <= 2.5 * N
