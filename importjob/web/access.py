"""Who may see which jobs and do what: decided by the application, per request.

The application hands `create_app` an access function of the Starlette
request returning an `Access` (or None to refuse the request). The routes
scope every read to the jobs it lets the user see, and every action is
recorded on the logger ``importjob.web.audit``, allowed or refused.
`TokenAccess` is the access of ``importjob serve``.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import uuid
from collections.abc import Awaitable, Callable

import attrs
from starlette.requests import Request

from importjob import _validate
from importjob.exceptions import InvalidFieldError

__all__ = [
    "AUDIT_LOGGER",
    "TOKEN_HEADER",
    "Access",
    "AccessFunction",
    "TokenAccess",
    "is_loopback",
]

AUDIT_LOGGER = "importjob.web.audit"
"""The name of the logger that records every action, allowed (INFO) or refused (WARNING)."""
TOKEN_HEADER = "X-Importjob-Token"  # noqa: S105 - the header's name, not a secret
"""The request header that must carry `TokenAccess`'s token for a cancel.

A header, because no cross-site form or image can send one.
"""

ACCESS_KEY = "importjob.web.access"
"""The key of a request's `Access` in its ASGI scope, set before any route runs."""
_audit = logging.getLogger(AUDIT_LOGGER)


def _flag(name: str) -> Callable[[object, attrs.Attribute[bool], object], None]:
    def check(instance: object, attribute: attrs.Attribute[bool], value: object) -> None:
        if not isinstance(value, bool):
            raise InvalidFieldError(name, "must be True or False", value)

    return check


def _user(value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise InvalidFieldError("user", "must be a str or None", value)
    return value


@attrs.frozen(kw_only=True)
class Access:
    """What the user of one request may see and do.

    ``user`` names them in the audit log (None: anonymous). Unless
    ``all_owners``, they see the jobs of ``owner`` only (a job's
    `ImportJob.owner`): every list, page, API answer, stream and export;
    another owner's job answers exactly as a job that does not exist.
    ``can_cancel`` lets them cancel the jobs they see. Raises
    `InvalidFieldError` for an owner that `ImportJob.owner` would refuse, or
    for no owner without ``all_owners``.
    """

    user: str | None = attrs.field(default=None, converter=_user)
    owner: str | None = attrs.field(default=None, converter=_validate.owner)
    all_owners: bool = attrs.field(default=False, validator=_flag("all_owners"))
    can_cancel: bool = attrs.field(default=False, validator=_flag("can_cancel"))

    def __attrs_post_init__(self) -> None:
        if self.owner is None and not self.all_owners:
            raise InvalidFieldError("owner", "is needed unless all_owners", None)

    def sees(self, owner: str | None) -> bool:
        """Return whether this user sees a job of ``owner``."""
        return self.all_owners or owner == self.owner


AccessFunction = Callable[[Request], "Access | Awaitable[Access | None] | None"]
"""A function, or a coroutine function, of the request: its `Access`, or None to refuse it (403)."""


def is_loopback(host: str) -> bool:
    """Return whether ``host`` is reachable from this machine alone."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# Methods that change nothing: a page read with one shows the cancel button,
# which asks for the token before it sends its POST.
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@attrs.frozen
class TokenAccess:
    """The access of ``importjob serve``: whoever reaches the server sees every job.

    Without a ``token``, nobody may cancel. With one, a request carrying it
    in the `TOKEN_HEADER` header may (compared in constant time), and the
    job page asks for it before it sends a cancel. With ``loopback_only``,
    a request from another machine is refused (403).
    """

    token: str | None = attrs.field(default=None)
    loopback_only: bool = attrs.field(default=False, validator=_flag("loopback_only"))

    @token.validator
    def _check(self, attribute: attrs.Attribute[str | None], value: object) -> None:
        if value is not None and (not isinstance(value, str) or not value):
            raise InvalidFieldError("token", "must be a non-empty str or None", value)

    @property
    def refusal(self) -> str:
        """Return why a cancel without the right token is refused."""
        if self.token is None:
            return "read-only: start the server with --allow-cancel to cancel"
        return f"cancel needs the token printed at start, in {TOKEN_HEADER}"

    def __call__(self, request: Request) -> Access | None:
        """Return the request's access: every job; a cancel with the token."""
        if self.loopback_only and (request.client is None or not is_loopback(request.client.host)):
            return None
        if self.token is None:
            return Access(all_owners=True)
        if request.method in _SAFE_METHODS:
            return Access(all_owners=True, can_cancel=True)
        given = request.headers.get(TOKEN_HEADER, "")
        allowed = hmac.compare_digest(given.encode(), self.token.encode())
        return Access(all_owners=True, can_cancel=allowed)


def request_access(request: Request) -> Access:
    """Return the `Access` the application's access function gave this request."""
    access: Access = request.scope[ACCESS_KEY]
    return access


def audit(action: str, access: Access, job_id: uuid.UUID, owner: str | None, result: str) -> None:
    """Record one action on ``AUDIT_LOGGER``: who, on which job of which owner, and what came of it.

    ``result`` is ``"allowed"`` for an action done, else why it was refused
    or failed. The record carries each as an attribute too (``action``,
    ``user``, ``job_id``, ``owner``, ``result``) for a structured handler.
    """
    level = logging.INFO if result == "allowed" else logging.WARNING
    _audit.log(
        level,
        "%s %s: user=%r job=%s owner=%r",
        action,
        result,
        access.user,
        job_id,
        owner,
        extra={
            "action": action,
            "user": access.user,
            "job_id": str(job_id),
            "owner": owner,
            "result": result,
        },
    )
