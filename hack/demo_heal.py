"""The demo's last act: a payment call fails, the SDK heals it through the registry API, the
outcome is reported. Runs the local payments test server with the primary API key revoked.

Usage: python hack/demo_heal.py SELFHEAL_URL TOKEN PUBLIC_KEY_PEM_FILE
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cryptography.hazmat.primitives import serialization  # noqa: E402

from molam import ApiError, MolamClient  # noqa: E402
from selfheal.core.signing import key_id  # noqa: E402
from tests.sdk.payments_server import PaymentsServer  # noqa: E402


def main() -> None:
    selfheal_url, token, pem_file = sys.argv[1:4]
    pem = Path(pem_file).read_text()
    trusted = {key_id(serialization.load_pem_public_key(pem.encode())): pem}
    logging.basicConfig(level=logging.INFO, format="  [sdk] %(message)s")
    with PaymentsServer() as payments:
        payments.behaviour.revoked_keys = {"pk_primary"}
        print("» payments server: the primary API key is revoked, so calls fail with 401 api_key_revoked")
        plain = MolamClient(
            api_key="pk_primary",
            secret_key=payments.behaviour.secret_key,
            base_url=payments.url,
            enable_self_healing=False,
        )
        try:
            plain.create_payment(amount=5000, currency="XOF", country="SN")
        except ApiError as error:
            print(f"» without self-healing: {error}")
        with MolamClient(
            api_key="pk_primary",
            secret_key=payments.behaviour.secret_key,
            base_url=payments.url,
            selfheal_url=selfheal_url,
            selfheal_token=token,
            trusted_keys=trusted,
            fallback_credentials={"MOLAM_FALLBACK_API_KEY": "pk_fallback"},
            on_patch_applied=lambda patch: print(
                f"» onPatchApplied: {patch.description} (patch {patch.id} v{patch.version})"
            ),
        ) as client:
            payment = client.create_payment(amount=5000, currency="XOF", country="SN")
            print(f"» with self-healing: payment {payment['id']} {payment['status']}")
            client.flush_reports()
            print(f"» patch history: {[(p.id, p.version, p.success) for p in client.get_patch_history()]}")


if __name__ == "__main__":
    main()
