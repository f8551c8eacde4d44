"""Who a request is: the identity authentication puts on every connection, and what it may see."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

#: The operator's own account: what configured keys, `keys create` keys and an open server act as. It
#: owns everything stored before accounts existed.
OPERATOR_ID = "user_operator"
OPERATOR_NAME = "operator"

Via = Literal["open", "operator_key", "token", "session"]


@dataclass(frozen=True, slots=True)
class Principal:
    user_id: str
    username: str
    is_admin: bool
    via: Via
    #: The API token's id (via "token"), the session's id (via "session"), or the configured key's digest
    #: (via "operator_key", none for the CLI); None otherwise.
    credential_id: str | None = None

    @property
    def owner_scope(self) -> str | None:
        """The owner whose records this principal sees: None (everyone's) for admins."""
        return None if self.is_admin else self.user_id


#: An open server (no key, token or password anywhere) serves every request as the operator.
OPEN = Principal(OPERATOR_ID, OPERATOR_NAME, is_admin=True, via="open")
