"""Every packaged policy that `ttc-router policy validate` accepts also starts a server.

Validation and start-up must run one set of checks: a policy that validates but cannot serve
(for instance `models.X.base_url` required at start-up while the schema documents an unset one
as the provider's default API) is a defect. Each packaged policy starts a real server (uvicorn
on loopback, real Redis) with dummy API keys and no network, and routes one request per tier
through `/v1/route`. Clients for the hosted providers are built but never called; the embedded
llama.cpp model is replaced by a scripted upstream here (it runs end to end in
`tests/router/test_local_model.py`).
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest

from bench.stub_upstream import ServerThread
from classifier.base import TIERS, Tier, TierScores
from policies.loader import load_policy
from router.upstreams.base import Upstream
from tests.fakes import ScriptedUpstream

POLICY_DIR = Path(__file__).resolve().parents[2] / "policies"
PACKAGED = sorted([POLICY_DIR / "default.yaml", *(POLICY_DIR / "examples").glob("*.yaml")])
GATEWAY_HEADER = "x-test-tenant"


class TierFromText:
    """A classifier for this test: the request text names its tier (`tier=hard`)."""

    async def classify(self, texts: Sequence[str]) -> list[TierScores]:
        out = []
        for text in texts:
            named = text.rsplit("tier=", 1)[-1].strip()
            tier = Tier(named)
            out.append(
                TierScores.from_probabilities([float(t is tier) for t in TIERS], source="fixed")
            )
        return out


def test_every_packaged_policy_is_covered() -> None:
    names = {p.name for p in PACKAGED}
    assert {"default.yaml", "hosted.yaml", "vllm-prm.yaml"} <= names


@pytest.mark.parametrize("path", PACKAGED, ids=lambda p: p.name)
def test_packaged_policy_validates_and_serves(
    path: Path, redis_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from router.app import create_app
    from router.settings import Settings

    policy = load_policy(path).policy  # what `ttc-router policy validate` runs
    for spec in policy.models.values():
        if spec.api_key_env:
            monkeypatch.setenv(spec.api_key_env, "dummy-key-not-used")
    # No network: SDK default endpoints point at a closed loopback port.
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "http://127.0.0.1:9")
    local: dict[str, Upstream] = {
        name: ScriptedUpstream(name=name)
        for name, spec in policy.models.items()
        if spec.provider == "local"
    }
    settings = Settings(
        policy_path=path,
        redis_url=redis_url,
        redis_prefix=f"ttc-test-{uuid.uuid4().hex[:8]}:",
        data_dir=tmp_path,
        tenant_header=GATEWAY_HEADER,  # an unlisted tenant: no caps, no tier clamp
    )
    app = create_app(settings, upstreams=local, classifier=TierFromText())
    with ServerThread(app) as server:
        for tier in TIERS:
            r = httpx.post(
                f"{server.url}/v1/route",
                json={"input": f"Route this. tier={tier.value}"},
                headers={GATEWAY_HEADER: "packaged-policy-check"},
                timeout=30,
            )
            assert r.status_code == 200, r.text
            body = r.json()
            tp = policy.tiers[tier]
            assert (body["tier"], body["strategy"], body["model"]) == (
                tier.value,
                tp.strategy,
                tp.model,
            )
            assert r.headers["x-ttc-tier"] == tier.value
        ready = httpx.get(f"{server.url}/readyz", timeout=30).json()
        assert sorted(ready["checks"]["upstreams"]["models"]) == sorted(policy.models)
