// The demo's story, step by step: start a group of two audio services, set them up, stream audio,
// kill the primary mid-stream, fail over, check the state survived, resume without losing a buffer; then reload
// the group mid-stream (a new version: standby first, one handover) without losing a buffer; stop.
import { once } from 'node:events';
import { existsSync, readdirSync } from 'node:fs';
import type { ExitStatus } from '@libipc/process';
import { type FailoverEvent, ServiceGroup } from '@libipc/group';
import { ServiceRegistry } from '@libipc/registry';
import { Channel } from '@libipc/typed-channel';
import type { EngineCommand, EngineKind } from './cpp-engine.js';
import type { SweepSpec } from './dsp.js';
import { type ControlBody, ControlSenders, PrimaryLink } from './host-links.js';
import { channelNames, SERVICE_NAME } from './names.js';
import { ParamType, paramName, type Reply, Status, statusName } from './protocol.js';
import { formatMs, percentile } from './stats.js';
import { AudioStreamer } from './stream.js';
import { formatTable, type InstanceRow, instanceRows } from './table.js';

export interface HostOptions {
  /** What each instance runs (the Node service, the C++ engine, or one by id): `executable ...args <id>`. */
  command: EngineCommand;
  engine: EngineKind;
  domain: string;
  /** Buffers streamed before the crash, and again across it. */
  buffers: number;
  /** Buffers in flight at most. */
  window: number;
  print: (line: string) => void;
}

export interface Summary {
  ok: boolean;
  engine?: EngineKind;
  failedStep?: string;
  error?: string;
  /** SIGKILL of the primary → first ack from the new primary. */
  failoverMs?: number;
  /** The group's own figure: exit seen → standby promoted. */
  failoverDetectedMs?: number;
  buffersPerSec?: number;
  latencyMs?: { p50: number; p99: number };
  gainReadBack?: number;
  buffersPlanned?: number;
  buffersVerified?: number;
  lostBuffers?: number;
  resentBuffers?: number;
  maxSampleError?: number;
  instancesBefore?: InstanceRow[];
  instancesAfter?: InstanceRow[];
  /** The reload: the handover it made, how many 'primary' events (epoch changes) clients saw, buffers re-sent. */
  reload?: { previous?: string; primary?: string; epoch: number; epochChanges: number; replaced: number; resent: number; ms: number };
  leftoversRemoved?: number;
}

const REPLICAS = 2;
const GAIN = 0.75;
const PAN = 0;
const FORMAT = { sampleRate: 48_000, channels: 2, bufferFrames: 512 };
const TIMEOUT_MS = 10_000;

class StepError extends Error {
  constructor(
    readonly step: string,
    why: string,
  ) {
    super(why);
  }
}

const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

export class DemoHost {
  readonly summary: Summary = { ok: false };
  private readonly opts: HostOptions;
  private registry: ServiceRegistry | undefined;
  private group: ServiceGroup | undefined;
  private readonly controls = new ControlSenders();
  private link: PrimaryLink | undefined;
  private interrupted = false;
  private stopping: Promise<void> | undefined;
  /** What every instance should hold: replayed to a respawned one. */
  private readonly desired = { streaming: false, params: new Map<ParamType, number>() };

  constructor(opts: HostOptions) {
    this.opts = opts;
  }

  /** Runs the whole story and stops everything; never throws. `summary.ok` only when every step passed. */
  async run(): Promise<Summary> {
    this.summary.engine = this.opts.engine;
    try {
      await this.flow();
      this.summary.ok = true;
    } catch (err) {
      this.fail(err instanceof StepError ? err.step : 'demo', err instanceof Error ? err.message : String(err));
    }
    try {
      await this.shutdown();
    } catch (err) {
      this.fail('shut down', (err as Error).message);
    }
    return this.summary;
  }

  /** Ctrl-C: stop the group and close everything; the running step fails as 'interrupted'. */
  interrupt(): Promise<void> {
    this.interrupted = true;
    return this.shutdown();
  }

  private fail(step: string, why: string): void {
    this.summary.ok = false;
    if (this.summary.failedStep !== undefined) return; // keep the first failure
    this.summary.failedStep = step;
    this.summary.error = why;
  }

  private async step<T>(name: string, fn: () => Promise<T>): Promise<T> {
    if (this.interrupted) throw new StepError(name, 'interrupted (Ctrl-C)');
    try {
      const result = await fn();
      if (this.interrupted) throw new StepError(name, 'interrupted (Ctrl-C)'); // e.g. start() returns early when stopped
      return result;
    } catch (err) {
      if (err instanceof StepError) throw err;
      throw new StepError(name, this.interrupted ? 'interrupted (Ctrl-C)' : (err as Error).message);
    }
  }

  private async flow(): Promise<void> {
    const { print, domain, buffers, window } = this.opts;
    const registry = (this.registry = new ServiceRegistry(domain));
    const group = (this.group = new ServiceGroup(registry, {
      serviceName: SERVICE_NAME,
      executable: this.opts.command.executable,
      args: this.opts.command.args,
      replicas: REPLICAS,
      stdio: 'inherit', // the services log to stderr
    }));
    group.on('instance-exit', (e: { name: string; pid: number; status: ExitStatus }) =>
      print(`host: ${e.name} (pid ${e.pid}) exited: ${e.status.signal ? `signal ${e.status.signal}` : `exit code ${e.status.exitCode}`}`),
    );

    await this.step('start the service group', async () => {
      const engines = { node: 'Node', cpp: 'C++', mixed: 'instance 0 in C++, 1 in Node' }[this.opts.engine];
      print(`host: starting service group (${REPLICAS} replicas${this.opts.engine === 'node' ? '' : `, ${engines}`})...`);
      await group.start();
    });
    this.summary.instancesBefore = this.printInstances('before the crash');

    await this.step('connect to the instances', () => this.connect());
    await this.command('StartStream', { type: 'start', ...FORMAT }, Status.Ok);
    await this.command(`SetParam(Gain, ${GAIN})`, { type: 'set', param: ParamType.Gain, value: GAIN }, Status.Ok);
    await this.readGain('GetParam(Gain)');

    const spec: SweepSpec = { sampleRate: FORMAT.sampleRate, channels: FORMAT.channels, frames: FORMAT.bufferFrames, buffers: 3 * buffers };
    const streamer = new AudioStreamer(spec, { gain: GAIN, pan: PAN });
    const before = range(0, buffers);
    const across = range(buffers, 2 * buffers);
    await this.step('stream audio', async () => {
      print(`host: streaming ${buffers} buffers of a 100 Hz → 8 kHz sine sweep (${FORMAT.sampleRate} Hz, ${FORMAT.channels} ch, ${FORMAT.bufferFrames} frames)`);
      // Latency with one buffer in flight (a buffer's own round trip), then throughput with a full window.
      const half = Math.floor(buffers / 2);
      await streamer.run(this.link!, before.slice(0, half), { window: 1, timeoutMs: TIMEOUT_MS });
      const p50 = percentile(streamer.latenciesMs, 50);
      const p99 = percentile(streamer.latenciesMs, 99);
      const { elapsedMs } = await streamer.run(this.link!, before.slice(half), { window, timeoutMs: TIMEOUT_MS });
      if (streamer.mismatched > 0) throw new Error(`${streamer.mismatched} buffers came back with wrong samples (max error ${streamer.maxError})`);
      this.summary.latencyMs = { p50, p99 };
      this.summary.buffersPerSec = Math.round(((buffers - half) / elapsedMs) * 1000);
      const realTime = (this.summary.buffersPerSec * FORMAT.bufferFrames) / FORMAT.sampleRate;
      print(`host: ${streamer.verifiedCount}/${buffers} buffers back, every sample = input × ${GAIN} (max error ${streamer.maxError.toExponential(1)})`);
      print(`host: round trip per buffer p50 ${formatMs(p50)}, p99 ${formatMs(p99)} (one in flight); ${this.summary.buffersPerSec} buffers/s = ${realTime.toFixed(0)}× real time (${window} in flight)`);
    });

    // Mid-stream: stop waiting after a quarter came back, with the window full, and kill the primary.
    await this.step('stream until the crash', () => streamer.run(this.link!, across, { window, stopAfter: Math.ceil(buffers / 4), timeoutMs: TIMEOUT_MS }));
    const victim = group.primary();
    if (victim?.pid === undefined) throw new StepError('crash the primary', 'the group has no primary to kill');
    const failover = once(group, 'failover', { signal: AbortSignal.timeout(TIMEOUT_MS) }) as Promise<[FailoverEvent]>;
    const respawned = this.respawnOf(victim.name);
    respawned.catch(() => undefined); // awaited later; a failure there is reported by that step
    const killedAt = performance.now();
    process.kill(victim.pid, 'SIGKILL'); // at once: the buffers just sent are still being processed
    print('*** SIMULATING PRIMARY CRASH ***');
    print(`host: SIGKILL ${victim.name} (pid ${victim.pid}) with ${streamer.inFlight().length} audio buffers in flight`);

    const [event] = await this.step('fail over', () => failover.catch(() => Promise.reject(new Error(`no 'failover' event within ${TIMEOUT_MS} ms`))));
    this.summary.failoverDetectedMs = event.detectedInMs;
    print(`host: failover ${event.previous} -> ${event.primary} (epoch ${event.epoch}), promoted ${formatMs(event.detectedInMs)} after the exit was seen`);
    this.controls.drop(victim.name);
    const resend = await this.switchPrimary(streamer, event.primary, 'before the crash');
    await this.command('StartStream (again, on the new primary)', { type: 'start', ...FORMAT }, Status.Ok);
    this.summary.failoverMs = performance.now() - killedAt;
    print(`host: failover took ${formatMs(this.summary.failoverMs)} (kill -> first ack from the new primary)`);
    const gain = await this.readGain('GetParam(Gain) on the new primary');
    if (gain !== GAIN) throw new StepError('state survives the failover', `the new primary answered Gain = ${gain}, not ${GAIN}: its state was lost`);
    print(`host: state survived the failover: Gain = ${gain} on ${event.primary}`);

    await this.step('stream again', async () => {
      const rest = across.filter((seq) => !streamer.wasSent(seq));
      await streamer.run(this.link!, [...resend, ...rest], { window, timeoutMs: TIMEOUT_MS });
      if (streamer.mismatched > 0) throw new Error(`${streamer.mismatched} buffers came back with wrong samples (max error ${streamer.maxError})`);
      print(`host: re-sent ${resend.length} buffers and streamed the other ${rest.length}: all back, = input × ${GAIN}`);
    });
    await this.step('bring the respawned instance up to date', async () => {
      const { name, pid } = await respawned;
      await this.connectInstance(name);
      await this.replayState(name);
      print(`host: ${name} respawned (pid ${pid}) as a standby; replayed StartStream and ${[...this.desired.params].map(([p, v]) => `${paramName(p)} ${v}`).join(', ')} to it`);
    });
    this.summary.instancesAfter = this.printInstances('after the crash');

    const during = range(2 * buffers, 3 * buffers);
    await this.reloadStory(streamer, during);
    const planned = [...before, ...across, ...during];
    const lost = streamer.lost(planned);
    Object.assign(this.summary, {
      buffersPlanned: planned.length,
      buffersVerified: streamer.verifiedCount,
      lostBuffers: lost.length,
      resentBuffers: streamer.resent,
      maxSampleError: streamer.maxError,
    });
    print(`host: ${streamer.verifiedCount}/${planned.length} buffers verified, ${lost.length} lost, ${streamer.resent} re-sent`);
    if (lost.length > 0) throw new StepError('count lost buffers', `${lost.length} buffers never came back: ${lost.slice(0, 10).join(', ')}`);
    await this.command('StopStream', { type: 'stop' }, Status.Ok);
  }

  /**
   * A new version rolled out mid-stream: ServiceGroup.reload() restarts the standby (the host replays the state
   * to it), hands over to it with one epoch change, then restarts the old primary as the new standby. The host
   * moves to the new primary on the 'failover' event and re-sends what was in flight; nothing may be lost.
   */
  private async reloadStory(streamer: AudioStreamer, seqs: number[]): Promise<void> {
    const { print, buffers, window } = this.opts;
    const group = this.group!;
    await this.step('stream until the reload', () => streamer.run(this.link!, seqs, { window, stopAfter: Math.ceil(buffers / 4), timeoutMs: TIMEOUT_MS }));
    const primaries: FailoverEvent[] = [];
    const onPrimary = (e: FailoverEvent) => primaries.push(e);
    group.on('primary', onPrimary);
    const handover = once(group, 'failover', { signal: AbortSignal.timeout(4 * TIMEOUT_MS) }) as Promise<[FailoverEvent]>;
    const startedAt = performance.now();
    print('*** RELOADING THE GROUP (a new version, standby first) ***');
    const reload = group.reload({
      prepare: async (instance) => {
        await this.connectInstance(instance.name);
        await this.replayState(instance.name);
        print(`host: ${instance.name} restarted (pid ${instance.pid}) as a standby; replayed the state to it`);
      },
    });
    reload.catch(() => undefined); // awaited below, after the handover
    try {
      const [event] = await this.step('hand over', () => handover.catch(() => Promise.reject(new Error("no 'failover' event during the reload"))));
      print(`host: handover ${event.previous} -> ${event.primary} (epoch ${event.epoch}, reason ${event.reason}) while ${event.previous} still ran`);
      const resend = await this.switchPrimary(streamer, event.primary, 'before the handover');
      // The replayed state went out on the control channel, the audio goes on another: its ack (after the replay,
      // same channel) says the new primary is streaming before the first buffer reaches it, which it would drop.
      await this.command('StartStream (again, on the new primary)', { type: 'start', ...FORMAT }, Status.Ok);
      await this.step('stream across the reload', async () => {
        const rest = seqs.filter((seq) => !streamer.wasSent(seq));
        await streamer.run(this.link!, [...resend, ...rest], { window, timeoutMs: TIMEOUT_MS });
        if (streamer.mismatched > 0) throw new Error(`${streamer.mismatched} buffers came back with wrong samples (max error ${streamer.maxError})`);
      });
      const report = await this.step('finish the reload', () => reload);
      const gain = await this.readGain('GetParam(Gain) after the reload');
      if (gain !== GAIN) throw new StepError('state survives the reload', `the new primary answered Gain = ${gain}, not ${GAIN}`);
      this.summary.reload = {
        previous: report.previous,
        primary: report.primary,
        epoch: report.epoch,
        epochChanges: primaries.length,
        replaced: report.replaced.length,
        resent: resend.length,
        ms: Math.round(performance.now() - startedAt),
      };
      print(`host: reload done in ${formatMs(this.summary.reload.ms)}: ${report.replaced.length} instances replaced, ${primaries.length} epoch change, ${resend.length} buffers re-sent, Gain = ${gain}`);
      if (primaries.length !== 1) throw new StepError('one epoch change', `clients saw ${primaries.length} primaries during the reload`);
    } finally {
      group.off('primary', onPrimary);
    }
  }

  /** Takes what the old primary already sent back, moves to the new primary; returns the buffers to send again. */
  private async switchPrimary(streamer: AudioStreamer, primary: string, when: string): Promise<number[]> {
    const inFlight = streamer.inFlight().length;
    const cameBack = streamer.drain(this.link!);
    this.link!.close();
    this.link = undefined;
    const resend = streamer.abandonInFlight();
    this.opts.print(`host: of the ${inFlight} buffers in flight, ${cameBack} came back ${when}; ${resend.length} will be re-sent`);
    await this.step('reconnect to the new primary', () => this.connectPrimary(primary, 'reconnected to'));
    return resend;
  }

  // ---- steps' helpers ----

  private printInstances(when: string): InstanceRow[] {
    const rows = instanceRows(this.group!.instances());
    this.opts.print(`host: instances ${when}`);
    for (const line of formatTable(rows)) this.opts.print(line);
    return rows;
  }

  /** Control channels to every instance, then the primary's reply and data channels. */
  private async connect(): Promise<void> {
    for (const instance of this.group!.instances()) await this.connectInstance(instance.name);
    const primary = this.group!.primary();
    if (!primary) throw new Error('the group elected no primary');
    await this.connectPrimary(primary.name, 'connected to');
  }

  private async connectInstance(name: string): Promise<void> {
    const entry = this.registry!.find(name);
    if (!entry) throw new Error(`${name} is not registered in domain ${this.opts.domain}`);
    await this.controls.connect(name, entry.controlChannel, TIMEOUT_MS);
  }

  private async connectPrimary(name: string, verb: string): Promise<void> {
    const entry = this.registry!.find(name);
    if (!entry) throw new Error(`${name} is not registered in domain ${this.opts.domain}`);
    this.link = await PrimaryLink.open(entry, TIMEOUT_MS);
    const n = this.link.names;
    this.opts.print(`host: ${verb} ${name}: control ${entry.controlChannel} -> / <- ${n.reply}, audio ${n.dataIn} -> / <- ${n.dataOut}`);
  }

  /** Sends a command to every instance and checks the primary's ack. */
  private async command(label: string, body: ControlBody, want: Status): Promise<Reply> {
    return this.step(label, async () => {
      const seq = await this.controls.send(body);
      this.opts.print(`host: ${label} (seq=${seq})`);
      const reply = await this.awaitReply(seq);
      if (reply.type !== 'ack') throw new Error(`expected an ack, got ${reply.type}`);
      this.opts.print(`ack ref_seq=${reply.refSeq} status=${statusName(reply.status)}`);
      if (reply.status !== want) throw new Error(`status ${statusName(reply.status)}, expected ${statusName(want)}`);
      if (body.type === 'start') this.desired.streaming = true;
      if (body.type === 'stop') this.desired.streaming = false;
      if (body.type === 'set') this.desired.params.set(body.param, body.value);
      return reply;
    });
  }

  private async readGain(label: string): Promise<number> {
    return this.step(label, async () => {
      const seq = await this.controls.send({ type: 'get', param: ParamType.Gain });
      this.opts.print(`host: ${label} (seq=${seq})`);
      const reply = await this.awaitReply(seq);
      if (reply.type !== 'param') throw new Error(`expected a ParamValue, got ack status=${statusName(reply.status)}`);
      this.opts.print(`param ${reply.param} = ${reply.value}`);
      this.summary.gainReadBack = reply.value;
      return reply.value;
    });
  }

  private awaitReply(seq: bigint): Promise<Reply> {
    if (!this.link) throw new Error('not connected to a primary');
    return this.link.awaitReply(seq, TIMEOUT_MS, (why) => this.opts.print(`host: ${why}`));
  }

  /** A standby that was not there when the commands went out gets them now (it applies them silently). */
  private async replayState(name: string): Promise<void> {
    for (const [param, value] of this.desired.params) await this.controls.send({ type: 'set', param, value }, name);
    if (this.desired.streaming) await this.controls.send({ type: 'start', ...FORMAT }, name);
  }

  private respawnOf(name: string): Promise<{ name: string; pid: number }> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.group?.off('respawn', onRespawn);
        reject(new Error(`${name} was not respawned within ${TIMEOUT_MS} ms`));
      }, TIMEOUT_MS).unref();
      const onRespawn = (e: { name: string; pid: number }) => {
        if (e.name !== name) return;
        clearTimeout(timer);
        this.group?.off('respawn', onRespawn);
        resolve(e);
      };
      this.group!.on('respawn', onRespawn);
    });
  }

  // ---- shutting down ----

  private shutdown(): Promise<void> {
    this.stopping ??= this.stopAll();
    return this.stopping;
  }

  private async stopAll(): Promise<void> {
    const { print, domain } = this.opts;
    if (this.group) {
      print('host: stopping the group...');
      await this.group.stop();
    }
    this.link?.close();
    this.controls.closeAll();
    this.registry?.close();
    // Channels of an instance that crashed while nobody else held them stay behind: remove them.
    const names = range(0, REPLICAS).flatMap((id) => Object.values(channelNames(domain, id)));
    const leftovers = names.filter((name) => existsSync(`/dev/shm/libipc.chan.${name}`));
    for (const name of leftovers) Channel.clearStorage(name);
    this.summary.leftoversRemoved = leftovers.length;
    const ours = new Set([`libipc.registry.${domain}`, ...names.map((n) => `libipc.chan.${n}`)]);
    const left = readdirSync('/dev/shm').filter((f) => ours.has(f));
    if (left.length > 0) throw new Error(`left in /dev/shm: ${left.join(', ')}`);
    print(`host: group stopped, channels closed, nothing left in /dev/shm${leftovers.length ? ` (removed ${leftovers.length} channels left by crashed instances)` : ''}`);
  }
}
