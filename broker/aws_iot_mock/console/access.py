"""Who may use the console: the token, the Host check and the same-origin rule for actions. Pure.

The console can disconnect devices, publish as the cloud and rewrite shadows, so:

- **Token.** When the api door listens beyond loopback (Docker publishes it), or a token is
  configured, every request must carry the token: ``?token=`` on the first page load (answered
  with a cookie and a redirect that drops it from the address bar), then the ``HttpOnly``,
  ``SameSite=Strict`` cookie, or an ``Authorization: Bearer`` header (scripts, curl). Tokens are
  compared in constant time.
- **Host.** Without a token (loopback only), the ``Host`` header must name loopback
  (``localhost``, ``127.0.0.1``, ``[::1]``): a web page whose own host name resolves to
  127.0.0.1 (DNS rebinding) is refused.
- **Actions.** A ``POST`` must be JSON (``Content-Type: application/json``, which a cross-site
  form cannot send without a CORS preflight, never answered here) and, when the browser says
  where it comes from (``Origin``), from the console's own origin.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from urllib.parse import urlsplit

from aws_iot_mock.http.messages import HttpRequest

__all__ = ["COOKIE_NAME", "ConsoleAccess", "Refusal", "Verdict"]

COOKIE_NAME = "aws_iot_mock_console"
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True)
class Refusal:
    """Why a request is refused: the HTTP status and a sentence for the page."""

    status: int
    message: str


@dataclass(frozen=True)
class Verdict:
    """A request let through; ``set_cookie`` when it carried the token in its query."""

    set_cookie: bool = False


def _host_name(host_header: str) -> str:
    """``localhost:9443`` -> ``localhost``; ``[::1]:9443`` -> ``::1``."""
    return (urlsplit(f"//{host_header}").hostname or "").lower()


@dataclass(frozen=True)
class ConsoleAccess:
    """The console's access rule.

    Attributes:
        token: the token (random per start unless configured).
        token_required: whether requests must carry it.
    """

    token: str
    token_required: bool

    def check(self, request: HttpRequest) -> Verdict | Refusal:
        """Whether ``request`` may be served."""
        set_cookie = False
        if self.token_required:
            presented = self._presented(request)
            if presented is None:
                return Refusal(
                    401,
                    "This console needs its token: open the URL with ?token= that the broker "
                    "printed at start",
                )
            token, from_query = presented
            if not hmac.compare_digest(token.encode(), self.token.encode()):
                return Refusal(403, "Wrong console token")
            set_cookie = from_query
        else:
            host = _host_name(request.header("host") or "")
            if host not in _LOOPBACK_HOSTS:
                return Refusal(
                    403,
                    f"Host {host!r} is not loopback: without a token the console answers "
                    "only to localhost, 127.0.0.1 and [::1]",
                )
        if request.method not in ("GET", "HEAD"):
            refusal = _action_refusal(request)
            if refusal is not None:
                return refusal
        return Verdict(set_cookie=set_cookie)

    def cookie_header(self, *, secure: bool) -> str:
        """The ``Set-Cookie`` value that carries the token for the console's paths."""
        flags = "; Secure" if secure else ""
        return f"{COOKIE_NAME}={self.token}; Path=/console; HttpOnly; SameSite=Strict{flags}"

    @staticmethod
    def _presented(request: HttpRequest) -> tuple[str, bool] | None:
        """The token the request carries and whether it came in the query, or None."""
        authorization = request.header("authorization")
        if authorization is not None and authorization.lower().startswith("bearer "):
            return authorization[7:].strip(), False
        cookies = request.header("cookie")
        if cookies:
            jar: SimpleCookie = SimpleCookie()
            try:
                jar.load(cookies)
            except CookieError:
                pass
            else:
                morsel = jar.get(COOKIE_NAME)
                if morsel is not None:
                    return morsel.value, False
        token = request.query().get("token")
        if token is not None:
            return token, True
        return None


def _action_refusal(request: HttpRequest) -> Refusal | None:
    content_type = (request.header("content-type") or "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        return Refusal(415, "Console actions are JSON (Content-Type: application/json)")
    origin = request.header("origin")
    if origin is not None and origin != "null":
        origin_host = urlsplit(origin).netloc.lower()
        if origin_host != (request.header("host") or "").lower():
            return Refusal(403, f"Cross-origin console action from {origin!r}")
    elif origin == "null":
        return Refusal(403, "Console actions from an opaque origin are refused")
    return None
