"""The worker's scheduler and jobs: every target on its interval, the detectors, rollups,
remediation and hypotheses passes. The ledger is its only way to talk to the UI."""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import platform
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from importlib import metadata

import aiohttp
from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from prometheus_client import (
    CollectorRegistry,
    Counter,
    Histogram,
    Info,
    PlatformCollector,
    ProcessCollector,
    disable_created_metrics,
)
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import Engine

from app.answers import take_answer
from app.worker.batching import GroupCommit
from app.worker.buckets import spread
from app.worker.fleet import FleetMember, Member
from detectors.cycle import run_rules
from hypotheses.refine import refine_due
from learning.suggestions import suggest
from learning.training import train
from ledger.db import read_session, utcnow, with_secrets, write_session
from ledger.fleet_samples import LedgerSamples, take_in
from ledger.notifications import notification_counts
from ledger.queries import action_request_counts, open_incident_counts
from ledger.repo import notifications as outbox
from ledger.rollups import Rollups
from ledger.samples import SampleStore
from notifications.answers import Answer, telegram_answer, telegram_reply, telegram_updates
from notifications.outbox import deliver_due, report_trouble
from notifications.plan import plan
from notifications.senders import DeliveryFailed
from policies.channels import TelegramChannel
from policies.holder import PolicyHolder
from policies.secrets import redact
from probes.context import USER_AGENT, ProbeClient, ProbeContext
from probes.cycle import Run, run_target
from probes.ingest import IngestResult, ingest_batch
from remediation.executor import run_pass

log = logging.getLogger("workbench.worker")
RELOAD_JOB, FLUSH_JOB, HOUSEKEEPING_JOB, DETECT_JOB = "policy-reload", "samples-flush", "housekeeping", "detect"
ROLLUP_JOB, REMEDIATE_JOB = "rollups", "remediation"
HYPOTHESES_JOB, LEARN_JOB, NOTIFY_JOB = "hypotheses", "learning", "notifications"
FLEET_JOB = "fleet-heartbeat"
# what runs once for the whole ledger: on the one worker, or on the fleet's holder of the house duties
HOUSE_DUTIES = {HYPOTHESES_JOB, LEARN_JOB, HOUSEKEEPING_JOB, DETECT_JOB, ROLLUP_JOB, REMEDIATE_JOB, NOTIFY_JOB}
HOUSE_JOBS = HOUSE_DUTIES | {RELOAD_JOB, FLUSH_JOB, FLEET_JOB}  # every job that is not a target's
ANSWER_RETRY = 5.0  # seconds before reading a channel's answers again after it failed
INGEST_BATCH_PAYLOADS, INGEST_BATCH_BYTES = 256, 4 * 1024 * 1024  # the most one group commit takes
disable_created_metrics()  # no <name>_created series beside each counter and histogram


def ends_quietly(job):
    """A job run cancelled by the scheduler's shutdown ends without a traceback in the log."""
    @functools.wraps(job)
    async def run(*args):
        try:
            await job(*args)
        except asyncio.CancelledError:
            log.debug("%s cancelled: the worker is stopping", job.__name__)
    return run


class Worker:
    def __init__(self, holder: PolicyHolder, engine: Engine, store: SampleStore, member: Member | None = None):
        """``member``: this worker is one of a fleet (settings.yaml ``fleet:``, a PostgreSQL ledger)."""
        self.holder = holder
        self.engine = with_secrets(engine, lambda: holder.secrets)  # the policy in force's, masked in the ledger
        self.store = store
        self.fleet = None if member is None else FleetMember(self, member, holder.policy.settings.fleet)
        # a fleet worker's samples reach the store through the ledger (ledger/fleet_samples.py)
        self.samples = store if member is None else LedgerSamples(self.engine, member.name)
        self.rollups = Rollups(store)
        self.started = time.monotonic()
        self.scheduler: AsyncIOScheduler | None = None
        self.ctx: ProbeContext | None = None
        self.registry = r = CollectorRegistry()
        self.runs = Counter("workbench_probe_runs_total", "Probe runs by target and kind.", ["target", "kind"],
                            registry=r)
        self.failures = Counter("workbench_probe_failures_total", "Failed probe runs by target.", ["target"],
                                registry=r)
        self.duration = Histogram("workbench_probe_duration_seconds", "Probe duration by target.", ["target"],
                                  registry=r)
        self.lag = Histogram("workbench_schedule_lag_seconds", "Delay between a job's planned and actual start.",
                             registry=r)
        self.write = Histogram("workbench_ledger_write_seconds", "Time to commit one probe result to the ledger.",
                               registry=r)
        self.errors = Counter("workbench_cycle_errors_total", "Probe cycles that could not be recorded.", ["target"],
                              registry=r)
        self.ingested = Counter("workbench_ingest_payloads_total", "Webhook payloads by result: accepted, rejected "
                                "(4xx) or failed (the ledger could not commit them, 503).", ["result"], registry=r)
        self.ingest_commit = Histogram("workbench_ingest_commit_seconds", "Time to validate and commit one batch of "
                                       "webhook payloads that arrived together (group commit).", registry=r)
        self.alert_events = Counter("workbench_alert_events_total", "Alert events by what they did.", ["outcome"],
                                    registry=r)
        self.samples_written = Counter("workbench_samples_written_total", "Samples written to the store.", registry=r)
        self.rollup_seconds = Histogram("workbench_rollup_seconds", "Time of one rollup pass: samples rolled up per "
                                        "minute and per hour, compacted, past retention removed.", registry=r)
        self.detect_seconds = Histogram("workbench_detector_cycle_seconds",
                                        "Time to evaluate every detector rule and record what changed.", registry=r)
        self.rule_signals = Counter("workbench_rule_signals_total", "Rule evaluations by what they signalled.",
                                    ["signal"], registry=r)
        self.detect_errors = Counter("workbench_detector_errors_total", "Detector cycles that failed.", registry=r)
        self.hypothesis_runs = Counter("workbench_hypothesis_runs_total", "Hypothesis refinements by status: done, "
                                       "failed (the draft stands) or error.", ["status"], registry=r)
        self.refine_seconds = Histogram("workbench_hypothesis_refine_seconds",
                                        "Time of one background refinement pass.", registry=r)
        self.suggestions = Counter("workbench_rule_suggestions_total", "Rule suggestions learned from history.",
                                   registry=r)
        self.learn_errors = Counter("workbench_learning_errors_total", "Learning passes that failed.", registry=r)
        self.action_runs = Counter("workbench_action_runs_total", "Approved action requests taken up, by result: "
                                   "succeeded, failed, timed_out or refused.", ["result"], registry=r)
        self.action_verifications = Counter("workbench_action_verifications_total", "Verifications after an action, "
                                            "by result: passed, failed, skipped.", ["result"], registry=r)
        self.action_seconds = Histogram("workbench_action_run_seconds", "Time of one action's run.", registry=r)
        self.deliveries = Counter("workbench_notification_attempts_total", "Notification delivery attempts by "
                                  "channel and result: sent, retry (failed, tried again later), fallback (failed "
                                  "for good, the next channel takes it) or failed (for good, the inbox holds it).",
                                  ["channel", "result"], registry=r)
        self.delivery_delay = Histogram("workbench_notification_delay_seconds", "Time from planning a notification "
                                        "to its delivery.", buckets=(0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900),
                                        registry=r)
        self.notify_errors = Counter("workbench_notification_errors_total", "Notification passes that failed.",
                                     registry=r)
        self.answers = Counter("workbench_channel_answers_total", "Button answers read from channels.",
                               ["channel"], registry=r)
        self.remediation_errors = Counter("workbench_remediation_errors_total", "Remediation passes that failed.",
                                          registry=r)
        r.register(ScrapeTimeGauges(self))
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)
        Info("workbench_build", "The workbench's version and the Python running it.", registry=r).info(
            {"version": _version(), "python": platform.python_version()})
        self.http: aiohttp.ClientSession | None = None
        self.answer_loops: dict[str, asyncio.Task] = {}
        self.alert_batches = GroupCommit(self._commit_alert_batch, self._failed_alert_batch,
                                         max_count=INGEST_BATCH_PAYLOADS, max_bytes=INGEST_BATCH_BYTES)

    # --- scheduling -------------------------------------------------------------------
    async def run(self, stop: asyncio.Event) -> None:
        """Run the jobs until ``stop`` is set (the worker without its endpoints, as tests run it)."""
        self.start()
        try:
            await stop.wait()
        finally:
            await self.stop()

    def start(self) -> None:
        """Schedule every job on the running event loop."""
        settings = self.holder.policy.settings
        # a fleet's probes say where they come from, for the target's access log
        agent = USER_AGENT if self.fleet is None else f"{USER_AGENT} (location {self.fleet.member.location})"
        self.ctx = ProbeContext(ProbeClient(settings.max_connections, user_agent=agent),
                                max_body_bytes=settings.max_body_bytes,
                                engine=self.engine, recorder=ThreadPoolExecutor(thread_name_prefix="record"))
        # a job woken late (a busy machine) still runs, once; a target's own runs allow at most its interval
        self.scheduler = AsyncIOScheduler(timezone="UTC", job_defaults={"coalesce": True, "max_instances": 1,
                                                                          "misfire_grace_time": None})
        self.scheduler.add_listener(self._on_submitted, EVENT_JOB_SUBMITTED)
        self._add_job(self._reload, id=RELOAD_JOB, seconds=settings.policy_reload_interval.total_seconds())
        self._add_job(self._flush_samples, id=FLUSH_JOB, seconds=settings.samples_flush_interval.total_seconds())
        self.http = aiohttp.ClientSession(trust_env=False)
        if self.fleet is None:
            self._schedule_targets()
            self.schedule_house()
        self.scheduler.start()
        log.info("worker started: %d targets", len(self.enabled()))

    async def join_fleet(self) -> None:
        """Join the fleet (a worker of the same name still alive refuses it) and heartbeat."""
        await self.fleet.join()
        self._add_job(self.fleet.beat, id=FLEET_JOB, seconds=self.fleet.settings.heartbeat.total_seconds())

    def schedule_house(self) -> None:
        """Schedule the house duties: on the one worker, or on the fleet's holder of them."""
        settings = self.holder.policy.settings
        for job, options in ((self._housekeeping, {"id": HOUSEKEEPING_JOB, "minutes": 10}),
                             (self._roll_up, {"id": ROLLUP_JOB, "minutes": 1}),
                             (self._remediate, {"id": REMEDIATE_JOB,
                                                "seconds": settings.remediation_interval.total_seconds()})):
            if self.scheduler.get_job(options["id"]) is None:
                self._add_job(job, next_run_time=utcnow(), **options)
        self._schedule_detector()
        self._schedule_refinement()
        self._schedule_learning()
        self._schedule_notifications()

    def unschedule_house(self) -> None:
        """Stop the house duties (another worker of the fleet takes them)."""
        for job in HOUSE_DUTIES:
            if self.scheduler.get_job(job) is not None:
                self.scheduler.remove_job(job)
        for task in self.answer_loops.values():
            task.cancel()
        self.answer_loops.clear()

    @property
    def holds_house(self) -> bool:
        return self.fleet is None or self.fleet.house

    async def stop(self) -> None:
        """Leave the fleet, stop the jobs (runs in flight are cancelled and end quietly), let the last
        webhook batch commit, close the probe client, let the results being written commit and flush the
        samples."""
        if self.fleet is not None:
            await self.fleet.leave()
        self.scheduler.shutdown(wait=False)
        for task in self.answer_loops.values():
            task.cancel()
        await self.alert_batches.close()
        await self.http.close()
        await self.ctx.aclose()
        # a result still waiting for a thread is dropped: it was never committed
        await asyncio.to_thread(self.ctx.recorder.shutdown, cancel_futures=True)
        await self._flush_samples()
        log.info("worker stopped")

    def _add_job(self, job, **options) -> None:
        """An interval job (``options`` as APScheduler's ``add_job`` takes them)."""
        self.scheduler.add_job(ends_quietly(job), "interval", **options)

    def enabled(self):
        return [t for t in self.holder.policy.targets if t.enabled]

    def _schedule_targets(self) -> None:
        """One interval job per enabled target. A target's first run falls at a fixed point of
        its interval, drawn from its name, so thousands of targets do not all fire at once (at
        start or at a policy reload); a reload leaves the jobs whose interval did not change."""
        wanted = {t.name: t for t in self.enabled()}
        # looked up once: before the scheduler starts, get_job scans every job added so far
        scheduled = {job.id: job for job in self.scheduler.get_jobs()}
        for job in scheduled.values():
            if job.id not in HOUSE_JOBS and job.id not in wanted:
                job.remove()
        for name, target in wanted.items():
            job = scheduled.get(name)
            if job is not None and job.trigger.interval == target.interval:
                continue
            self._add_job(
                self.run_target, args=[name], id=name, replace_existing=True,
                seconds=target.interval.total_seconds(), next_run_time=utcnow() + spread(name, target.interval),
                misfire_grace_time=max(1, int(target.interval.total_seconds())),
            )

    def _schedule_detector(self) -> None:
        interval = self.holder.policy.rules.noise.evaluation_interval
        job = self.scheduler.get_job(DETECT_JOB)
        if job is None or job.trigger.interval != interval:
            self._add_job(self._detect, id=DETECT_JOB, replace_existing=True,
                          seconds=interval.total_seconds(), next_run_time=utcnow() + interval)

    def _schedule_refinement(self) -> None:
        interval = self.holder.policy.routing.refinement.interval
        job = self.scheduler.get_job(HYPOTHESES_JOB)
        if job is None or job.trigger.interval != interval:
            self._add_job(self._refine, id=HYPOTHESES_JOB, replace_existing=True,
                          seconds=interval.total_seconds(), next_run_time=utcnow() + interval)

    def _schedule_learning(self) -> None:
        """Rule suggestions every ``learning.interval`` (the first one interval after start), unless learning is off."""
        learning = self.holder.policy.rules.learning
        job = self.scheduler.get_job(LEARN_JOB)
        if learning.mode == "off":
            if job is not None:
                job.remove()
        elif job is None or job.trigger.interval != learning.interval:
            self._add_job(self._learn, id=LEARN_JOB, replace_existing=True,
                          seconds=learning.interval.total_seconds(), next_run_time=utcnow() + learning.interval)

    async def _learn(self) -> None:
        """Learn rule suggestions from history in a thread (backtests never hold up the probes); in
        training mode, then activate, promote or roll back learned rules (learning.training)."""
        try:
            policy = self.holder.policy
            made = await asyncio.to_thread(suggest, self.engine, self.store, policy, utcnow())
            await asyncio.to_thread(train, self.engine, policy, self.holder.directory, utcnow())
        except Exception as exc:
            self.learn_errors.inc()
            log.exception("learning rule suggestions failed; it runs again next interval")
            await self._trouble("learning", exc)
            return
        self.suggestions.inc(len(made))
        if made:
            log.info("%d rule suggestion(s) to review: workbench rules suggestions", len(made))

    async def _trouble(self, what: str, reason: Exception | str) -> None:
        """Tell the meta channels of channels.yaml (once an hour per kind of trouble)."""
        text = reason if isinstance(reason, str) else f"{type(reason).__name__}: {reason}"
        try:
            await asyncio.to_thread(report_trouble, self.engine, self.holder.policy.channels, what, text[:1000],
                                    utcnow())
        except Exception as exc:  # noqa: BLE001 - the ledger may be the trouble: the log has it
            log.warning("could not report %s trouble to the meta channels: %s: %s", what, type(exc).__name__, exc)

    def _schedule_notifications(self) -> None:
        """Plan and deliver notifications every ``interval`` of channels.yaml; read the answers of
        each Telegram channel that has approvers, in a loop of its own."""
        config = self.holder.policy.channels
        job = self.scheduler.get_job(NOTIFY_JOB)
        if job is None or job.trigger.interval != config.interval:
            self._add_job(self._notify, id=NOTIFY_JOB, replace_existing=True, next_run_time=utcnow(),
                          seconds=config.interval.total_seconds())
        wanted = {a.channel for a in config.approvers if isinstance(config.channel(a.channel), TelegramChannel)}
        for name in list(self.answer_loops):
            if name not in wanted or self.answer_loops[name].done():
                self.answer_loops.pop(name).cancel()
        for name in wanted - set(self.answer_loops):
            self.answer_loops[name] = asyncio.get_running_loop().create_task(self._read_answers(name))

    async def _notify(self) -> None:
        """Plan what is due (routes, escalations, approvals) in a thread, then deliver the outbox."""
        policy = self.holder.policy
        try:
            await asyncio.to_thread(plan, self.engine, policy, utcnow())
        except Exception as exc:  # what is already in the outbox is still delivered
            self.notify_errors.inc()
            log.exception("planning notifications failed; it runs again next interval")
            await self._trouble("notification planning", exc)
        try:
            done = await deliver_due(self.engine, policy.channels, os.environ, self.http)
        except Exception as exc:
            self.notify_errors.inc()
            log.exception("notification pass failed; it runs again next interval")
            await self._trouble("notification pass", exc)
            return
        for (channel, result), count in done.results.items():
            self.deliveries.labels(channel, result).inc(count)
        for seconds in done.delays:
            self.delivery_delay.observe(seconds)
        for channel, reason in done.failures:
            log.warning("delivery to %s failed: %s", channel, reason)

    async def _read_answers(self, name: str) -> None:
        """Long-poll a Telegram channel's button answers and take each one; where reading stopped is
        kept in the ledger, after each answer, so none is read twice or missed across a restart."""
        while True:
            channel = self.holder.policy.channels.channel(name)
            if not isinstance(channel, TelegramChannel):
                return
            try:
                offset = await asyncio.to_thread(self._cursor, name)
                for update in await telegram_updates(self.http, channel, os.environ, offset):
                    answer = telegram_answer(name, update)
                    if answer is not None:
                        await self._take(channel, answer)
                    await asyncio.to_thread(self._move_cursor, name, update["update_id"] + 1)
            except asyncio.CancelledError:
                raise
            except (DeliveryFailed, aiohttp.ClientError, TimeoutError, ValueError) as exc:
                log.warning("reading answers from %s failed: %s; again in %.0fs", name,
                            redact(f"{type(exc).__name__}: {exc}", self.holder.secrets), ANSWER_RETRY)
                await asyncio.sleep(ANSWER_RETRY)
            except Exception as exc:  # noqa: BLE001 - the loop goes on; the bot token is masked in the reason
                log.error("reading answers from %s failed: %s; again in %.0fs", name,
                          redact(f"{type(exc).__name__}: {exc}", self.holder.secrets), ANSWER_RETRY)
                await asyncio.sleep(ANSWER_RETRY)

    async def _take(self, channel: TelegramChannel, answer: Answer) -> None:
        self.answers.labels(channel.name).inc()
        reply = await asyncio.to_thread(take_answer, self.engine, self.holder.policy, self.store.root.parent,
                                        answer, utcnow())
        log.info("answer %r from %s user %s: %s", answer.verb, channel.name, answer.identity, reply)
        try:
            await telegram_reply(self.http, channel, os.environ, answer.reference, reply)
        except (DeliveryFailed, aiohttp.ClientError, TimeoutError) as exc:
            log.warning("could not show the outcome in %s: %s", channel.name,
                        redact(f"{type(exc).__name__}: {exc}", self.holder.secrets))

    def _cursor(self, name: str) -> int:
        with read_session(self.engine) as session:
            return outbox.cursor(session, name)

    def _move_cursor(self, name: str, offset: int) -> None:
        with write_session(self.engine) as session:
            outbox.move_cursor(session, name, offset, utcnow())

    async def _refine(self) -> None:
        """Refine hypotheses in a thread: a model's answer never holds up the probes."""
        policy = self.holder.policy
        started = time.perf_counter()
        try:
            runs = await asyncio.to_thread(refine_due, self.engine, self.store, policy, self.holder.secrets)
        except Exception as exc:
            self.hypothesis_runs.labels("error").inc()
            log.exception("hypothesis refinement failed; it runs again next interval")
            await self._trouble("hypothesis refinement", exc)
            return
        self.refine_seconds.observe(time.perf_counter() - started)
        for run in runs:
            self.hypothesis_runs.labels(run.status).inc()
            log.info("hypotheses of incident %d: %s%s", run.incident_id, run.status,
                     f" ({run.reason})" if run.reason else "")

    async def _reload(self) -> None:
        """Reload the policy files in a thread, so a slow load never holds up the probes (the holder runs
        one reload at a time); reschedule on the loop."""
        changed = await asyncio.to_thread(self.holder.reload_if_changed)
        if self.holder.error is not None:
            await self._trouble("policy", f"the policy files on disk were refused, the last good policy stays in force: "
                                          f"{self.holder.error.problems[0]}")
        if changed:
            self.ctx.max_body_bytes = self.holder.policy.settings.max_body_bytes
            if self.fleet is None:
                self._schedule_targets()
        if self.holds_house:
            self.schedule_house()

    async def _detect(self) -> None:
        """Evaluate the detector rules over the samples written so far."""
        await self._flush_samples()
        try:
            outcome = await asyncio.to_thread(run_rules, self.engine, self.store, self.holder.policy)
        except Exception as exc:
            self.detect_errors.inc()
            log.exception("detector cycle failed; it runs again next interval")
            await self._trouble("detector cycle", exc)
            return
        self.detect_seconds.observe(outcome.evaluate_seconds + outcome.write_seconds)
        for name, count in outcome.signals.items():
            self.rule_signals.labels(name).inc(count)
        changed = {k: v for k, v in outcome.signals.items() if k not in ("none", "still_firing")}
        if changed or outcome.released:
            log.info("rules: %s%s", changed, f"; {outcome.released} suppressed findings released"
                     if outcome.released else "")

    def _on_submitted(self, event: JobSubmissionEvent) -> None:
        if event.job_id not in HOUSE_JOBS and event.scheduled_run_times:
            self.lag.observe(max(0.0, (utcnow() - max(event.scheduled_run_times)).total_seconds()))

    async def _flush_samples(self) -> None:
        """Write the samples buffered; a fleet worker sends them to the ledger, and the one holding the
        house duties takes in what the fleet sent."""
        flushed = await asyncio.to_thread(self.samples.flush)
        if self.fleet is None:
            self.samples_written.inc(flushed)
        elif self.fleet.house:
            self.samples_written.inc(await asyncio.to_thread(take_in, self.engine, self.store))

    async def _housekeeping(self) -> None:
        keep = self.holder.policy.settings.samples_retention
        removed = await asyncio.to_thread(self.store.enforce_retention, keep)
        compacted = await asyncio.to_thread(self.store.compact)
        if removed or compacted:
            log.info("samples: %d segments past retention removed, %d hours compacted", removed, compacted)

    async def _roll_up(self) -> None:
        """Per-minute and per-hour rollups of the samples, once a bucket's late samples are in:
        a probe's samples are flushed up to its timeout plus a flush interval after their time."""
        settings = self.holder.policy.settings
        late = 2 * settings.samples_flush_interval + max((t.probe_timeout for t in self.enabled()),
                                                         default=timedelta(0))
        keep = {"1m": settings.rollups_1m_retention, "1h": settings.rollups_1h_retention}
        started = time.perf_counter()
        await asyncio.to_thread(self.rollups.maintain, late, keep)
        self.rollup_seconds.observe(time.perf_counter() - started)

    async def _remediate(self) -> None:
        """Propose recommended actions, run approved ones and verify them (remediation/executor.py);
        the signing key of approvals lives in the data directory, the parent of the samples store."""
        try:
            outcome = await run_pass(self.engine, self.holder.policy, self.store.root.parent, self.ctx)
        except Exception as exc:
            self.remediation_errors.inc()
            log.exception("remediation pass failed; it runs again next interval")
            await self._trouble("remediation pass", exc)
            return
        for result, count in outcome.results.items():
            self.action_runs.labels(result).inc(count)
        for result, count in outcome.verifications.items():
            self.action_verifications.labels(result).inc(count)
        for seconds in outcome.seconds:
            self.action_seconds.observe(seconds)

    async def ingest(self, body: bytes) -> IngestResult:
        """Validate and commit one webhook payload with the others that arrive meanwhile; the
        answer comes after the commit."""
        return await self.alert_batches.submit(body)

    def _commit_alert_batch(self, bodies: list[bytes]) -> list[IngestResult]:
        with self.ingest_commit.time():
            results = ingest_batch(self.engine, bodies)
        for result in results:
            self.ingested.labels("accepted" if result.status < 300 else "rejected").inc()
            for outcome, count in result.outcomes.items():
                self.alert_events.labels(outcome).inc(count)
        return results

    def _failed_alert_batch(self, exc: Exception) -> IngestResult:
        self.ingested.labels("failed").inc()
        reason = str(getattr(exc, "orig", None) or exc).split("\n", 1)[0] or type(exc).__name__
        return IngestResult(503, f"the ledger could not commit this payload, retry later: {reason}")

    async def run_target(self, name: str, run: Run | None = None) -> None:
        """Probe the target and record the run (``run``: which run of the fleet's schedule it is)."""
        try:
            target = self.holder.policy.target(name)
        except KeyError:
            return
        try:
            outcome = await run_target(self.engine, target, self.ctx, self.samples, run)
        except Exception:
            self.errors.labels(name).inc()
            log.exception("could not record the probe of %s; it runs again next interval", name)
            return
        observation = outcome.observation
        if outcome.duplicate:
            return
        self.runs.labels(name, target.kind).inc()
        self.duration.labels(name).observe(observation.duration_ms / 1000)
        self.write.observe(outcome.write_seconds)
        for result, count in outcome.alerts.items():
            self.alert_events.labels(result).inc(count)
        if not observation.ok:
            self.failures.labels(name).inc()
        quiet = observation.ok and outcome.signal.value == "none"
        log.log(logging.DEBUG if quiet else logging.INFO, "%s %s %s%s", name, "ok" if observation.ok else "FAIL",
                outcome.signal.value, f": {observation.error}" if observation.error else "")

    # --- health -----------------------------------------------------------------------
    def health(self) -> dict:
        fleet = {} if self.fleet is None else {"fleet": {
            "name": self.fleet.member.name, "location": self.fleet.member.location, "house": self.fleet.house,
            "buckets": len(self.fleet.running), "targets": sum(self.fleet.running.values())}}
        return {**self.holder.health(), "uptime_seconds": round(time.monotonic() - self.started, 1),
                "targets": len(self.enabled()), **fleet}


class ScrapeTimeGauges:
    """Gauges read when /metrics is scraped: open incidents by state and action requests by status
    from the ledger, whether the policy files are in force, how many targets are scheduled. A read
    that fails leaves its gauge out of that scrape (and logs why); the rest is served."""

    def __init__(self, worker: Worker):
        self.worker = worker

    def collect(self):
        w = self.worker
        gauges = [
            ("workbench_open_incidents", "Open incidents by state.", ["state"],
             lambda: {(state,): n for state, n in open_incident_counts(w.engine).items()}),
            ("workbench_action_requests", "Action requests by status.", ["status"],
             lambda: {(status,): n for status, n in action_request_counts(w.engine).items()}),
            ("workbench_notifications", "Notifications in the outbox by status (failed: undelivered, in the inbox).",
             ["status"], lambda: {(status,): n for status, n in notification_counts(w.engine).items()}),
            ("workbench_policy_valid", "1 when the policy files on disk are in force, 0 when rejected.", [],
             lambda: {(): 0 if w.holder.error else 1}),
            ("workbench_targets", "Targets scheduled.", [], lambda: {(): len(w.enabled())}),
        ]
        for name, help_text, labels, read in gauges:
            try:
                values = read()
            except Exception as exc:  # noqa: BLE001 - one broken read must not blank the page
                log.warning("%s left out of /metrics: %s: %s", name, type(exc).__name__, exc)
                continue
            family = GaugeMetricFamily(name, help_text, labels=labels)
            for key, value in values.items():
                family.add_metric(key, value)
            yield family


def _version() -> str:
    try:
        return metadata.version("sre-workbench")
    except metadata.PackageNotFoundError:
        return "unknown"
