"""Delivers the outbox: emails through SMTP, webhooks as signed HTTP POSTs, retried with backoff.

A row is claimed when due (`next_attempt_at <= now`, not sent, not dropped), sent with no transaction
open, then marked in a transaction of its own: sent; or attempts + 1, the error kept and the next attempt
put off (exponential, with jitter, capped); or dropped when it can never succeed (a recipient refused
with a 5xx, a webhook removed) or has failed for `give_up_after`.

Exactly once, with one honest exception. A scheduler crash or an SMTP outage loses nothing: the row was
committed with its event, and stays due until marked sent. Nothing is sent twice, except in one window
that no outbox can close: the receiver accepted the message and the scheduler died before the "sent"
commit. After the restart that row is still due and goes out again, with the same Message-ID (emails)
or the same webhook-id (webhooks), both derived from the outbox id, so the receiver can drop
the copy.

Order: each recipient (or webhook endpoint) gets its notices in id order. A row is not claimed while an
earlier undelivered row to the same destination waits for its retry (`due_outbox`); when a row fails,
the later rows of its destination in the same pass (every email, when the SMTP server itself fails) are
not tried and are put off to the same time, so they are retried together, in order. The price is
head-of-line blocking: a destination that keeps failing holds its later notices until it recovers or
the first one is given up.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import socket
import time
from contextlib import suppress
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

import aiohttp
import aiosmtplib
import yarl

from kvmaint import webhook
from server.notify.addresses import PrivateAddress, check_literal, connector_options
from server.notify.models import Channel, OutboxItem
from server.notify.outbox import ReminderPass
from server.service.core import Context

log = logging.getLogger(__name__)

USER_AGENT = "kvmaint-webhooks/1"
# How long the answers of writes sent with a request id are kept for retries.
REQUESTS_KEPT = timedelta(days=1)


@dataclass
class SmtpConfig:
    host: str = ""
    port: int = 25
    username: str = ""
    password: str = field(default="", repr=False)
    starttls: bool = False
    sender: str = "kvmaint@localhost"
    timeout: float = 30.0

    @property
    def enabled(self) -> bool:
        return bool(self.host)


@dataclass
class NotifyConfig:
    smtp: SmtpConfig = field(default_factory=SmtpConfig)
    # Seconds between passes (the 24-hour reminder check and the outbox); committed events also wake it.
    interval: float = 5.0
    retry_base: float = 1.0
    retry_max: float = 300.0
    give_up_after: timedelta = timedelta(days=3)
    webhook_timeout: float = 10.0
    batch: int = 200
    keep_sent: timedelta = timedelta(days=30)
    # Off by default: webhooks may only reach public addresses (see notify/addresses.py).
    allow_private_webhooks: bool = False
    # Where operators' emails go (a campaign that halted itself); empty: none.
    operator_email: str = ""


def retry_delay(attempts: int, base: float, cap: float, rand: float) -> float:
    """Seconds before the next try after `attempts` failures (>= 1): min(cap, base * 2^(attempts-1)),
    of which the upper half is random ("equal jitter"), so retries spread out but never come early."""
    ceiling = min(cap, base * 2.0 ** min(max(attempts, 1) - 1, 32))
    return ceiling / 2 + ceiling / 2 * rand


def message_id(item: OutboxItem, sender: str) -> str:
    """Stable for a row across retries and restarts; the hash of the dedupe key keeps it unique across
    databases whose outbox ids collide."""
    domain = sender.rpartition("@")[2] or "localhost"
    digest = hashlib.sha256(item.dedupe_key.encode()).hexdigest()[:16]
    return f"<kvmaint.{item.id}.{digest}@{domain}>"


def build_email(item: OutboxItem, sender: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = item.recipient
    msg["Subject"] = item.subject
    msg["Date"] = format_datetime(item.created_at)
    msg["Message-ID"] = message_id(item, sender)
    msg["Auto-Submitted"] = "auto-generated"
    msg["X-Kvmaint-Outbox-Id"] = str(item.id)
    msg.set_content(item.body)
    return msg


def webhook_headers(item: OutboxItem, secret: str, now: datetime) -> dict[str, str]:
    """Standard Webhooks headers (kvmaint/webhook.py); the id is the outbox row's, stable across retries."""
    try:
        event = str(json.loads(item.body).get("type", ""))
    except (ValueError, AttributeError):
        event = ""
    return {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        webhook.EVENT_HEADER: event,
        **webhook.headers(secret, delivery_id(item), int(now.timestamp()), item.body.encode()),
    }


def delivery_id(item: OutboxItem) -> str:
    """The webhook-id of a delivery: the outbox row's id, the same on every retry."""
    return str(item.id)


def _describe(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text[:500]


class _Blocked(Exception):
    """The destination itself failed (cannot connect, disconnected): the rest of its rows wait too."""


class _Refused(Exception):
    """This message can never be delivered (a 5xx for it)."""


@dataclass
class Pass:
    """What one pass over the due rows did, by outbox id."""

    sent: list[int] = field(default_factory=list)
    retried: list[int] = field(default_factory=list)
    dropped: list[int] = field(default_factory=list)


class Sender:
    def __init__(self, ctx: Context, config: NotifyConfig | None = None) -> None:
        self.ctx = ctx
        self.config = config or NotifyConfig()
        self._last_prune = float("-inf")
        self.reminders = ReminderPass(ctx)

    # --- the loop ----------------------------------------------------------------------------
    async def run(self) -> None:
        """Reminders and deliveries every `interval`, and as soon as a new event commits."""
        while True:
            seen = self.ctx.bus.last_sequence
            try:
                await self.cycle()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("notification pass failed")
            sleeper = asyncio.ensure_future(self.ctx.clock.sleep(self.config.interval))
            waker = asyncio.ensure_future(self.ctx.bus.wait_beyond(seen))
            try:
                await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                waker.cancel()

    async def cycle(self) -> Pass:
        started = time.perf_counter()  # a measurement, not a wait: real time
        if await self.reminders() is not None:  # timed when it read, not when it had no reason to
            self.ctx.obs.metrics.reminder_pass.observe(time.perf_counter() - started)
        done = await self.send_due()
        if self.ctx.clock.monotonic() - self._last_prune >= 3600:
            self._last_prune = self.ctx.clock.monotonic()
            async with self.ctx.store.transaction() as tx:
                pruned = await tx.prune_outbox(self.ctx.clock.now() - self.config.keep_sent)
                # Retried writes' records (server/rpc/requests.py): a client retries within seconds.
                await tx.prune_requests(self.ctx.clock.now() - REQUESTS_KEPT)
            if pruned:
                log.info("pruned %d delivered or dropped notifications", pruned)
        return done

    async def send_due(self) -> Pass:
        async with self.ctx.store.read() as tx:
            due = await tx.due_outbox(self.ctx.clock.now(), self.config.batch)
        done = Pass()
        emails = [i for i in due if i.kind is Channel.EMAIL]
        groups: dict[str, list[OutboxItem]] = {}
        for item in due:
            if item.kind is Channel.WEBHOOK:
                groups.setdefault(item.webhook_id, []).append(item)
        jobs = [self._emails(emails, done)] if emails else []
        if groups:
            jobs.append(self._webhooks(groups, done))
        await asyncio.gather(*jobs)
        return done

    # --- outcomes ----------------------------------------------------------------------------
    async def _sent(self, item: OutboxItem, done: Pass) -> None:
        async with self.ctx.store.transaction() as tx:
            await tx.mark_sent(item.id, self.ctx.clock.now())
        done.sent.append(item.id)
        log.info("notification %d (%s) delivered to %s: %s", item.id, item.kind, item.recipient, item.subject)

    async def _drop(self, item: OutboxItem, error: str, done: Pass) -> None:
        async with self.ctx.store.transaction() as tx:
            await tx.mark_dropped(item.id, error, self.ctx.clock.now())
        self.ctx.obs.metrics.notification_failures.labels(item.kind.value, "dropped").inc()
        done.dropped.append(item.id)
        log.warning("notification %d (%s) to %s dropped: %s", item.id, item.kind, item.recipient, error)

    def _next_attempt(self, item: OutboxItem) -> datetime:
        delay = retry_delay(
            item.attempts + 1, self.config.retry_base, self.config.retry_max, self.ctx.rng.random()
        )
        return self.ctx.clock.now() + timedelta(seconds=delay)

    async def _retry(self, item: OutboxItem, error: str, at: datetime, done: Pass) -> None:
        now = self.ctx.clock.now()
        if now - item.created_at >= self.config.give_up_after:
            await self._drop(item, f"gave up after {item.attempts + 1} attempts: {error}", done)
            return
        async with self.ctx.store.transaction() as tx:
            await tx.mark_retry(item.id, error, at)
        self.ctx.obs.metrics.notification_failures.labels(item.kind.value, "retry").inc()
        done.retried.append(item.id)
        log.warning(
            "notification %d (%s) to %s failed (attempt %d), next at %s: %s",
            item.id,
            item.kind,
            item.recipient,
            item.attempts + 1,
            at.isoformat(timespec="seconds"),
            error,
        )

    # --- email -------------------------------------------------------------------------------
    def _smtp(self) -> aiosmtplib.SMTP:
        c = self.config.smtp
        return aiosmtplib.SMTP(
            hostname=c.host,
            port=c.port,
            username=c.username or None,
            password=c.password or None,
            start_tls=c.starttls,
            timeout=c.timeout,
            local_hostname=socket.gethostname(),
        )

    async def _emails(self, items: list[OutboxItem], done: Pass) -> None:
        if not self.config.smtp.enabled:
            for item in items:  # queued under an earlier configuration: kept until SMTP is back
                error = "SMTP is not configured (--smtp-host)"
                await self._retry(item, error, self._next_attempt(item), done)
            return
        smtp: aiosmtplib.SMTP | None = None
        blocked: tuple[str, datetime] | None = None  # the server failed: every later row waits
        held: dict[str, tuple[str, datetime]] = {}  # a row failed: later rows to its recipient wait
        try:
            for item in items:
                wait = blocked or held.get(item.recipient)
                if wait is not None:
                    await self._retry(item, wait[0], wait[1], done)
                    continue
                try:
                    if smtp is None:
                        smtp = self._smtp()
                        try:
                            await smtp.connect()
                        except (aiosmtplib.SMTPException, OSError) as err:
                            raise _Blocked(f"cannot reach SMTP server: {_describe(err)}") from err
                    await self._send_one(smtp, item)
                except _Refused as err:
                    await self._drop(item, str(err), done)
                    smtp = _closed(smtp)
                except _Blocked as err:
                    blocked = (str(err), self._next_attempt(item))
                    await self._retry(item, blocked[0], blocked[1], done)
                    smtp = _closed(smtp)
                except aiosmtplib.SMTPResponseException as err:
                    held[item.recipient] = (f"SMTP {err.code}: {err.message}", self._next_attempt(item))
                    await self._retry(item, *held[item.recipient], done)
                    smtp = _closed(smtp)
                else:
                    await self._sent(item, done)
        finally:
            if smtp is not None:
                with suppress(aiosmtplib.SMTPException, OSError):
                    await smtp.quit()
                _closed(smtp)

    async def _send_one(self, smtp: aiosmtplib.SMTP, item: OutboxItem) -> None:
        try:
            await smtp.send_message(build_email(item, self.config.smtp.sender))
        except aiosmtplib.SMTPRecipientsRefused as err:
            codes = [r.code for r in err.recipients]
            text = "; ".join(f"{r.code} {r.message}" for r in err.recipients)
            if codes and all(code >= 500 for code in codes):
                raise _Refused(f"recipient refused: {text}") from err
            raise aiosmtplib.SMTPResponseException(min(codes or [450]), text) from err
        except aiosmtplib.SMTPSenderRefused as err:
            raise _Blocked(f"sender {err.sender} refused: {err.code} {err.message}") from err
        except aiosmtplib.SMTPResponseException as err:
            if err.code >= 500:
                raise _Refused(f"message refused: {err.code} {err.message}") from err
            raise
        except (aiosmtplib.SMTPException, OSError) as err:
            raise _Blocked(f"SMTP connection failed: {_describe(err)}") from err

    # --- webhooks ----------------------------------------------------------------------------
    async def _webhooks(self, groups: dict[str, list[OutboxItem]], done: Pass) -> None:
        timeout = aiohttp.ClientTimeout(total=self.config.webhook_timeout)
        connector = aiohttp.TCPConnector(**connector_options(self.config.allow_private_webhooks))
        async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
            await asyncio.gather(
                *(self._webhook_group(session, hid, rows, done) for hid, rows in groups.items())
            )

    async def _webhook_group(
        self, session: aiohttp.ClientSession, hook_id: str, items: list[OutboxItem], done: Pass
    ) -> None:
        async with self.ctx.store.read() as tx:
            hook = await tx.get_webhook(hook_id)
        blocked: tuple[str, datetime] | None = None
        for item in items:
            if hook is None:
                await self._drop(item, "the webhook was removed", done)
                continue
            if blocked is not None:
                await self._retry(item, blocked[0], blocked[1], done)
                continue
            headers = webhook_headers(item, hook.secret, self.ctx.clock.now())
            try:
                if not self.config.allow_private_webhooks:
                    check_literal(yarl.URL(hook.url).host or "")
                async with session.post(
                    hook.url, data=item.body.encode(), headers=headers, allow_redirects=False
                ) as resp:
                    if 200 <= resp.status < 300:
                        error = ""
                    else:
                        snippet = (await resp.content.read(200)).decode(errors="replace").strip()
                        error = f"HTTP {resp.status}" + (f": {snippet}" if snippet else "")
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as err:
                cause = getattr(err, "os_error", err)
                if isinstance(cause, PrivateAddress):
                    error = f"POST refused: {cause.args[0]}"
                else:
                    error = f"POST failed: {_describe(err)}"
            if error:
                blocked = (error, self._next_attempt(item))
                await self._retry(item, error, blocked[1], done)
            else:
                await self._sent(item, done)


def _closed(smtp: aiosmtplib.SMTP | None) -> aiosmtplib.SMTP | None:
    """Closes a connection that may be in an unknown state after an error; the next row reconnects."""
    if smtp is not None:
        smtp.close()
    return None


__all__ = ["NotifyConfig", "Pass", "Sender", "SmtpConfig", "build_email", "message_id", "retry_delay"]
