"""A person's decision on the moderation queue from the web, carried out as ``parvis moderate decide`` does.

The decision goes through :func:`parvis.workflows.moderation.decide` (queue state + audit log); a
``remove`` of a message of a connected Matrix account is also redacted on the homeserver with the
account's credentials (environment or secrets file), which
:func:`parvis.live.matrix.remove_on_platform` logs in the audit log too, success or refusal.
"""

from __future__ import annotations

import asyncio
import logging

from parvis.store import Store
from parvis.workflows import moderation

log = logging.getLogger(__name__)


def decide(store: Store, item_id: int, decision: str, moderator: str, reason: str) -> str:
    """Record and carry out the decision; returns the notice key to show (see ``labels.NOTICES``)."""
    decided = moderation.decide(store, item_id, decision, moderator, reason)
    if decision != "remove":
        return moderation.DECISIONS[decision]
    from parvis.live.matrix import MatrixError, account_for, authenticate, remove_on_platform
    from parvis.live.secrets import MatrixSecret, SecretsError, matrix_secret

    found = moderation.target_of(store, decided.activity_id)
    account = account_for(store, found[0]) if found is not None and found[1] == "matrix" else None
    if account is None:
        return "removed_here"
    if moderation.hidden_on_platform(store, decided.activity_id):
        return "removed_already"

    async def carry_out() -> str:
        secret = matrix_secret(account.user_id)
        if not secret.access_token:
            token, device = await authenticate(account, secret)
            secret = MatrixSecret(access_token=token, device_id=device)
        return await remove_on_platform(store, account, secret, decided, moderator, reason)

    try:
        asyncio.run(carry_out())
    except (MatrixError, SecretsError, OSError) as problem:
        log.warning("queue item %s: removal on %s failed: %s", item_id, account.homeserver, problem)
        if isinstance(problem, SecretsError):
            moderation.record(
                store,
                moderator,
                "hide",
                reason,
                activity_id=decided.activity_id,
                rule=decided.rule,
                details={"queue_item": item_id, "error": str(problem)},
            )
        return "removed_failed"
    return "removed_platform"
