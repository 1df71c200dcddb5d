"""Apps' webhook endpoints: where the maintenance lifecycle is POSTed, signed with the endpoint's secret."""

from __future__ import annotations

from urllib.parse import urlsplit

from kvmaint import webhook
from kvmaint.errors import AlreadyExists, ErrorReason, FailedPrecondition, InvalidArgument, NotFound, Resource
from server.notify.models import Webhook
from server.service.core import Context, get_app

MAX_URL = 2000
MAX_PER_APP = 10


def check_url(url: str) -> str:
    if not url:
        raise InvalidArgument.field("url", "A webhook URL is required (https://... or http://...).")
    if len(url) > MAX_URL:
        raise InvalidArgument.field("url", f"The webhook URL is longer than {MAX_URL} characters.")
    if any(c.isspace() or ord(c) < 32 or ord(c) == 127 for c in url):
        raise InvalidArgument.field("url", "The webhook URL contains spaces or control characters.")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise InvalidArgument.field("url", f"{url[:80]} is not a valid URL.") from None
    if parts.scheme not in ("http", "https"):
        raise InvalidArgument.field("url", "The webhook URL must start with https:// or http://.")
    if not parts.hostname:
        raise InvalidArgument.field("url", "The webhook URL names no host.")
    if parts.username is not None or parts.password is not None:
        raise InvalidArgument.field(
            "url", "Put no credentials in the webhook URL: deliveries are signed with the secret instead."
        )
    return url


class WebhookService:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def create(self, app: str, url: str, secret: str) -> tuple[Webhook, str]:
        """The new endpoint and, when none was given, the secret made for it (shown this once)."""
        url = check_url(url)
        made = ""
        if secret:
            webhook.check_secret(secret)
        else:
            secret = made = webhook.new_secret()
        async with self.ctx.store.transaction() as tx:
            await get_app(tx, app)
            hooks = await tx.list_webhooks(app)
            if any(h.url == url for h in hooks):
                raise AlreadyExists(
                    f"{app} already has a webhook for {url[:200]}.",
                    reason=ErrorReason.WEBHOOK_ALREADY_EXISTS,
                    resource=Resource("App", app),
                )
            if len(hooks) >= MAX_PER_APP:
                raise FailedPrecondition(
                    f"{app} has {len(hooks)} webhooks, the most an app may have.",
                    reason=ErrorReason.WEBHOOK_LIMIT_REACHED,
                    resource=Resource("App", app),
                )
            hook = Webhook(self.ctx.new_id(), app, url, secret, self.ctx.clock.now())
            await tx.insert_webhook(hook)
        return hook, made

    async def list(self, app: str) -> list[Webhook]:
        async with self.ctx.store.read() as tx:
            await get_app(tx, app)
            return await tx.list_webhooks(app)

    async def delete(self, app: str, id: str) -> Webhook:
        if not id:
            raise InvalidArgument.field("id", "A webhook id is required.")
        async with self.ctx.store.transaction() as tx:
            await get_app(tx, app)
            hook = await tx.get_webhook(id)
            if hook is None or hook.app != app:
                raise NotFound(
                    f"Couldn't find webhook {id[:80]} on app {app}.",
                    reason=ErrorReason.WEBHOOK_NOT_FOUND,
                    resource=Resource("Webhook", id[:80], f"apps/{app}"),
                )
            await tx.delete_webhook(id)
        return hook
