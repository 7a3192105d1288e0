"""Either SDK behind one small interface, so that each end-to-end rule is written once and run for
both: the Python SDK in this process, the Node SDK as a real `node` process driven line by line
(node_sdk_commands.js).

A call is one `create_payment` of a currency the payments server refuses (`invalid_currency`),
which the tests' patch heals by setting the default currency; `later` moves the SDK's clock ahead
of this machine's for that call (the payments server is told to accept the skewed signatures).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from molam import ApiError, MolamClient
from tests.sdk.payments_server import PaymentsServer

COMMANDS = Path(__file__).with_name("node_sdk_commands.js")
LANGUAGES = ("python", "node")


@dataclass
class Outcome:
    currency: str | None  # the healed payment's currency; None when the call failed
    error_code: str | None
    applied: list[str]  # ids of every patch the client applied so far, oldest first
    warnings: list[str] = field(default_factory=list)


class _Warnings(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


class PythonSdk:
    def __init__(self, payments: PaymentsServer, *, selfheal_url: str, token: str, trusted: dict) -> None:
        self.later, self.applied = 0.0, []
        self.client = MolamClient(
            api_key="pk_primary",
            secret_key=payments.behaviour.secret_key,
            base_url=payments.url,
            timeout=5.0,
            selfheal_url=selfheal_url,
            selfheal_token=token,
            trusted_keys=trusted,
            on_patch_applied=lambda patch: self.applied.append(patch.id),
            report_interval=0.05,
            clock=lambda: time.time() + self.later,
        )
        self._warnings = _Warnings()
        logging.getLogger("molam").addHandler(self._warnings)

    def pay(self, *, later: float = 0.0, currency: str = "XYZ") -> Outcome:
        self.later = later
        try:
            payment = self.client.create_payment(amount=100, currency=currency, country="SN")
            currency, code = payment["currency"], None
        except ApiError as error:
            currency, code = None, error.code
        warnings, self._warnings.lines = self._warnings.lines, []
        return Outcome(currency, code, list(self.applied), warnings)

    def pending(self) -> int:
        return self.client.pending_reports

    def flush(self) -> bool:
        return self.client.flush_reports()

    def close(self) -> None:
        logging.getLogger("molam").removeHandler(self._warnings)
        self.client.close()


class NodeSdk:
    def __init__(
        self, payments: PaymentsServer, *, selfheal_url: str, token: str, trusted: dict, log_file: Path
    ) -> None:
        node = shutil.which("node")
        assert node, "the Node SDK's side needs `node` (Node.js 18+) on PATH"
        env = {
            **os.environ,
            "PAYMENTS_URL": payments.url,
            "PAYMENTS_SECRET_KEY": payments.behaviour.secret_key,
            "MOLAM_SELFHEAL_URL": selfheal_url,
            "MOLAM_SELFHEAL_TOKEN": token,
            "TRUSTED_KEYS": json.dumps(trusted),
        }
        self.log_file = log_file
        with log_file.open("w") as stderr:
            self.process = subprocess.Popen(
                [node, str(COMMANDS)],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
            )

    def _ask(self, command: dict) -> dict:
        assert self.process.stdin and self.process.stdout
        self.process.stdin.write(json.dumps(command) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the Node driver stopped:\n{self.log_file.read_text()}"
        return json.loads(line)

    def pay(self, *, later: float = 0.0, currency: str = "XYZ") -> Outcome:
        answer = self._ask({"op": "pay", "later_ms": int(later * 1000), "currency": currency})
        payment, error = answer["payment"], answer["error"]
        return Outcome(
            payment["currency"] if payment else None,
            error["code"] if error else None,
            answer["applied"],
            answer["warnings"],
        )

    def pending(self) -> int:
        return self._ask({"op": "pending"})["pending"]

    def flush(self) -> bool:
        return self._ask({"op": "flush"})["flushed"]

    def close(self) -> None:
        assert self.process.stdin
        self.process.stdin.close()
        code = self.process.wait(timeout=30)
        assert code == 0, self.log_file.read_text()


def sdk(language: str, payments: PaymentsServer, *, selfheal_url: str, token: str, trusted: dict, log_dir: Path):
    if language == "python":
        return PythonSdk(payments, selfheal_url=selfheal_url, token=token, trusted=trusted)
    return NodeSdk(payments, selfheal_url=selfheal_url, token=token, trusted=trusted, log_file=log_dir / "node-sdk.log")
