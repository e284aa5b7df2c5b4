"""Credentials of every shape agentlog redacts, and text that must stay as it is.

All values are fabricated; they only have the shape of real ones. Shared by
``tests/test_secrets.py`` and ``tests/reliability/test_secrets.py``.
"""

from __future__ import annotations

import base64

# kind -> (the credential as it appears in text, the parts that must never be stored)
SECRETS: dict[str, tuple[str, tuple[str, ...]]] = {
    "openai_key": ("sk-proj-Q3xT9vLm2KpR7wYz4NbF8cHd1JsG6aEu0iOk5lMn_VbX2cZq", ("Q3xT9vLm2KpR7wYz4NbF8cHd",)),
    "openai_legacy": ("sk-Zt8QmN2pX7vR4kL9wJ3yH6cB1dF5gA0sE2uI8oP4rT7yU1", ("Zt8QmN2pX7vR4kL9wJ3yH6cB",)),
    "anthropic_key": ("sk-ant-api03-Xy7Kp2Lm9Qr4Vw8Zt1Bn6Hc3Jd5Fg0As-Ee2Ii4Oo6Uu8Yy0AaBbCcDdEeFf_GgHh-IiJj",
                      ("Xy7Kp2Lm9Qr4Vw8Zt1Bn6Hc3",)),
    "google_api_key": ("AIzaSyD4x9Kq2Lm7Np3Rs8Tv1Wx6Yz0Ab5Cd-Ef", ("SyD4x9Kq2Lm7Np3Rs8Tv1Wx6",)),
    "aws_access_key_id": ("AKIAZ7QXW3JKL5MNOP2R", ("AKIAZ7QXW3JKL5MNOP2R",)),
    "aws_secret_access_key": ("aws_secret_access_key=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",
                              ("Jx8vK2mQ9pL4wR7tZ1yN5bH3cF6dG0sA8eU2iO4r",)),
    "aws_pair": ("AKIAQ4RT7YU2IO9PLK3J with secret Vb3Nm8Qw2Er5Ty7Ui9Op1As4Df6Gh0Jk/L+Zx5Cv",
                 ("AKIAQ4RT7YU2IO9PLK3J", "Vb3Nm8Qw2Er5Ty7Ui9Op1As4Df6Gh0Jk/L+Zx5Cv")),
    "github_token": ("ghp_R4nD0mT0k3nV4lu3F0rT3st1ngPurp0s3sXy", ("R4nD0mT0k3nV4lu3F0rT3st1ng",)),
    "github_pat": ("github_pat_11ABCDEFG0Qx7Zp3Lm9Kr2Vt_Wy5Nb8Hc1Jd4Fg6As0Ee2Ii4Oo6Uu8Yy0AaBbCcDdEeFfGgHhIiJjKkLl",
                   ("11ABCDEFG0Qx7Zp3Lm9Kr2Vt_Wy5Nb8Hc1",)),
    "slack_token": ("xoxb-2048576012-4096123456789-Qw3Er5Ty7Ui9Op1As2Df4Gh6", ("4096123456789-Qw3Er5Ty7Ui9Op1As2Df4Gh6",)),
    "stripe_key": ("sk_live_51Hx7Kq2Lm9Np3Rs8Tv1Wx6Yz0Ab", ("51Hx7Kq2Lm9Np3Rs8Tv1Wx6Yz0Ab",)),
    "stripe_restricted": ("rk_live_51Jz8Lq3Mn0Op4St9Uv2Xy7Za1Bc", ("51Jz8Lq3Mn0Op4St9Uv2Xy7Za1Bc",)),
    "huggingface_token": ("hf_QxWvUtSrQpOnMlKjIhGfEdCbA9876543210", ("QxWvUtSrQpOnMlKjIhGfEdCbA98",)),
    "jwt": ("eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFkYSJ9"
            ".Tq3Zp9Lm2Kr7Vt4Wy8Nb1Hc5Jd0Fg6As3Ee",
            ("eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkFkYSJ9", "Tq3Zp9Lm2Kr7Vt4Wy8Nb1Hc5Jd0Fg6As3Ee")),
    "private_key": ("-----BEGIN RSA PRIVATE KEY-----\nMIIEpQIBAAKCAQEAz8Qx7Zp3Lm9Kr2Vt5Wy8Nb1Hc4Jd6Fg0As3Ee5Ii7Oo9Uu\n"
                    "Yy2AaBbCcDdEeFfGgHhIiJjKkLlMmNnOoPpQqRrSsTtUuVvWwXxYyZz0123456789\n"
                    "-----END RSA PRIVATE KEY-----",
                    ("MIIEpQIBAAKCAQEAz8Qx7Zp3Lm9Kr2Vt5Wy8", "AaBbCcDdEeFfGgHhIiJjKkLlMmNnOoPp")),
    "basic_auth": ("Authorization: Basic " + base64.b64encode(b"alice:Corr3ct-H0rse-Battery").decode(),
                   (base64.b64encode(b"alice:Corr3ct-H0rse-Battery").decode(),)),
    "bearer_token": ("Authorization: Bearer opaque7Tk3nQx9Lm2Kr5Vt8Wy1Nb4", ("opaque7Tk3nQx9Lm2Kr5Vt8Wy1Nb4",)),
    "url_password": ("postgresql://svc_user:P4ssw0rd-Sup3r-S3cret@db.internal:5432/app", ("P4ssw0rd-Sup3r-S3cret",)),
}

# Ordinary text that must come through unchanged.
INNOCENT: tuple[str, ...] = (
    "The quick brown fox jumps over the lazy dog. Basic information about bearer bonds is on page 4.",
    "Ask the task-force: skim the sk-learn docs, then run `pip install scikit-learn==1.5.2`.",
    "request id 3f2a9c1e-7b4d-4e8a-9c2f-1a2b3c4d5e6f, commit 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
    "sha256: 2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
    "def get_token_count(messages: list[dict]) -> int:\n    return sum(len(m['content']) for m in messages)",
    "See https://docs.python.org/3/library/re.html#re.Pattern.search and http://localhost:8080/health",
    "max_tokens=1024, prompt_tokens=812, completion_tokens=64, total_tokens=876",
    "The AWS account AKIA policy is described in the handbook; basic auth is disabled.",
    "git checkout -b fix/hf_hub_download && echo $HOME && ls ~/.ssh",
    "Bearer tokens must be rotated every 90 days (see SECURITY.md).",
    "Use `skip-ci` and `sk-` prefixed keys only in the vault; never paste them here.",
    "Le café coûte 3 € ; 東京は晴れ ; emoji 🙂 and a JSON snippet {\"a\": [1, 2, 3]}",
    "user@example.com wrote: meet at 10:30@room-4",
)
