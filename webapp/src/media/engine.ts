/**
 * The page's audio engine ({@link PhoneAudio}): one AudioContext at 48 kHz
 * with two worklet nodes (audio-worklet.js) and a media worker
 * (media-worker.js) holding the Opus encoder; Opus is libopus in
 * WebAssembly on both sides (quality.md §3.5), WebCodecs is not used:
 *
 *   microphone track ─► MediaStreamTrackProcessor ─► worker: libopus encode ─► page ─► OBJECT_DATAGRAM
 *   (or, without that processor: microphone ─► moq-capture ─(port)─► worker; framer.ts says why)
 *   OBJECT_DATAGRAM ─► page ─(port, + arrival time)─► moq-playout: controller, libopus decode/FEC/PLC, stretch ─► speakers
 *
 * getUserMedia asks for echo cancellation and noise suppression. If the
 * worker cannot start, the encoder runs on the main thread instead.
 *
 * Over WebRTC (the RTP mode, docs/design/webrtc.md §4 "Media") the
 * browser's own WebRTC stack codes the audio:
 *
 *   microphone track ─► RTCRtpSender (Opus RTP) ─► relay's gateway ─► OBJECT_DATAGRAM
 *   gateway ─► RTP ─► remote track ─► <audio> element ─► speakers
 *                                   └► moq-playout's input (recorded only; it outputs silence)
 */

import { INITIAL_SETTINGS, SenderAdapter, type EncoderSettings } from "./adapt.js";
import type { RxReport } from "./feedback.js";
import type { RedundantFrame } from "./loc.js";
import type { HostCommand, HostEvent, HostStats } from "./host.js";
import type { PlayoutReport } from "./receiver.js";
import { Tones } from "./tones.js";
import type { PlayoutPacket } from "./worklet.js";
import type { RtpAudio } from "../session/transport.js";
import { MicError, type PhoneAudio, type ToneKind } from "./types.js";

/** What a worklet tap recorded (test hook, latency bench). */
export interface Recording {
  pcm: Float32Array;
  rate: number;
  /**
   * Wall-clock time (ms since the epoch) of the first sample: for the
   * playout, when it reaches the speaker (AudioContext.getOutputTimestamp);
   * for the capture, when the worklet processed it.
   */
  startMs: number;
  /** What the browser reports, in ms: AudioContext base and output latency, microphone latency. */
  latency: { base: number; output: number; input: number };
}

type Dump = { pcm: Float32Array; startFrame: number; rate: number };

interface Graph {
  ctx: AudioContext;
  capture: AudioWorkletNode;
  playout: AudioWorkletNode;
  tones: Tones;
  send(c: HostCommand, transfer?: Transferable[]): void;
  /** Where the encoder runs ("none": the worker did not start). */
  where: "worker" | "none";
}

export class AudioEngine implements PhoneAudio {
  private graph: Promise<Graph> | undefined;
  private mic: MediaStream | undefined;
  private micNode: MediaStreamAudioSourceNode | undefined;
  private onFrame: ((opus: Uint8Array, captureUs: number, redundant?: RedundantFrame) => void) | undefined;
  /** The sender's side of adaptation (quality.md §4.2). */
  adapter = new SenderAdapter();
  /** The playout's latest report on the peer's audio (§4.1). */
  private lastRx: RxReport | undefined;
  private muted = false;
  private playing = true;
  /** RTP mode: where the microphone is sent, and what plays the peer. */
  private rtpOut: RtpAudio | undefined;
  private rtpIn: { rtp: RtpAudio; element: HTMLAudioElement; node: MediaStreamAudioSourceNode | undefined } | undefined;
  /** The last call's <audio> element, muted and still draining its connection's remote track. */
  private rtpIdle: HTMLAudioElement | undefined;
  private rtpIdleOf: RtpAudio | undefined;
  private readonly pendingDump: Record<"capture" | "playout", ((r: Dump) => void) | undefined> = { capture: undefined, playout: undefined };
  private readonly pendingCount: Record<"capture" | "playout", Array<(n: number) => void>> = { capture: [], playout: [] };
  private pendingStats: Array<(s: PlayoutReport) => void> = [];
  private pendingHostStats: Array<(s: HostStats) => void> = [];
  /** The last codec error, for the UI. */
  lastError: string | undefined;

  /** `assets`: where audio-worklet.js and media-worker.js are served. */
  constructor(private readonly assets: URL) {}

  /** True where this browser can run the audio path at all (Web Audio worklets and WebAssembly for libopus). */
  static supported(): boolean {
    return typeof AudioContext === "function" && typeof AudioWorkletNode === "function" && typeof WebAssembly === "object";
  }

  /** Creates / resumes the AudioContext; call from a user gesture (autoplay policy). */
  unlock(): void {
    void this.ready().then((g) => g.ctx.resume());
  }

  /** Whether sound can play now (the context runs). */
  async running(): Promise<boolean> {
    return (await this.ready()).ctx.state === "running";
  }

  /** Where the Opus encoder runs ("worker", or "none" if the worker did not start). */
  async codecThread(): Promise<string> {
    return (await this.ready()).where;
  }

  private ready(): Promise<Graph> {
    this.graph ??= this.build();
    return this.graph;
  }

  private async build(): Promise<Graph> {
    const ctx = new AudioContext({ sampleRate: 48000, latencyHint: "interactive" });
    await ctx.audioWorklet.addModule(new URL("audio-worklet.js", this.assets).href);
    const capture = new AudioWorkletNode(ctx, "moq-capture", { numberOfInputs: 1, numberOfOutputs: 0, channelCount: 1, channelCountMode: "explicit" });
    // Its input is the remote RTP track in the RTP mode, recorded there instead of decoded frames.
    const playout = new AudioWorkletNode(ctx, "moq-playout", { numberOfInputs: 1, numberOfOutputs: 1, outputChannelCount: [1], channelCount: 1, channelCountMode: "explicit" });
    playout.connect(ctx.destination);
    // The playout's decoder (libopus) loads asynchronously: the graph is ready once it did (or failed, said once).
    let decoderReady: () => void = () => undefined;
    const decoder = new Promise<void>((resolve) => (decoderReady = resolve));
    playout.port.onmessage = (e: MessageEvent<{ dump?: Dump; stats?: PlayoutReport; count?: number; ready?: boolean; error?: string; rx?: RxReport | null }>) => {
      if (e.data.rx !== undefined) this.lastRx = e.data.rx ?? undefined;
      if (e.data.dump) this.pendingDump.playout?.(e.data.dump);
      if (e.data.count !== undefined) for (const f of this.pendingCount.playout.splice(0)) f(e.data.count);
      if (e.data.stats) for (const f of this.pendingStats.splice(0)) f(e.data.stats);
      if (e.data.error) this.lastError = e.data.error;
      if (e.data.ready !== undefined) decoderReady();
    };
    capture.port.onmessage = (e: MessageEvent<{ dump?: Dump; count?: number }>) => {
      if (e.data.dump) this.pendingDump.capture?.(e.data.dump);
      if (e.data.count !== undefined) for (const f of this.pendingCount.capture.splice(0)) f(e.data.count);
    };
    const capChan = new MessageChannel();
    capture.port.postMessage({ data: capChan.port1 }, [capChan.port1]);
    const onHost = (m: HostEvent): void => this.hostEvent(m);
    let send: Graph["send"] = () => undefined;
    let where: Graph["where"] = "none";
    // No main-thread fallback any more: libopus runs in any worker (WebCodecs did not), and
    // keeping it out of the page's bundle saves the page ~0.5 MB.
    const worker = await this.startWorker(onHost);
    if (worker) {
      send = (c, transfer) => worker.postMessage(c, transfer ?? []);
      where = "worker";
    } else this.lastError = "the media worker (Opus encoder) did not start: the microphone cannot be sent";
    send({ t: "ports", capture: capChan.port2 }, [capChan.port2]);
    await decoder;
    return { ctx, capture, playout, tones: new Tones(ctx), send, where };
  }

  /** The media worker, once it started and loaded libopus; undefined if it cannot. */
  private async startWorker(onHost: (m: HostEvent) => void): Promise<Worker | undefined> {
    let worker: Worker;
    try {
      worker = new Worker(new URL("media-worker.js", this.assets).href, { type: "module" });
    } catch {
      return undefined;
    }
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => resolve(false), 3000);
      worker.onmessage = (e: MessageEvent<HostEvent>) => {
        if (e.data.t === "ready") {
          clearTimeout(timer);
          resolve(true);
        } else onHost(e.data);
      };
      worker.onerror = () => resolve(false);
    });
    if (!ok) {
      worker.terminate();
      return undefined;
    }
    return worker;
  }

  private hostEvent(m: HostEvent): void {
    if (m.t === "encoded") {
      const opus = new Uint8Array(m.opus);
      this.onFrame?.(opus, m.captureUs, this.adapter.next(opus));
    }
    else if (m.t === "error") this.lastError = m.message;
    else if (m.t === "stats") for (const f of this.pendingHostStats.splice(0)) f(m.stats);
  }

  async openMic(): Promise<void> {
    if (this.mic?.getAudioTracks().some((t) => t.readyState === "live")) return;
    if (!navigator.mediaDevices?.getUserMedia) throw new MicError("unsupported", "This browser cannot capture audio here (a secure https or localhost page is required).");
    let stream: MediaStream;
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true, channelCount: 1 } });
    } catch (e) {
      const name = (e as DOMException).name;
      if (name === "NotAllowedError" || name === "SecurityError") throw new MicError("denied", "Microphone access was denied. Allow the microphone for this site and try again.");
      if (name === "NotFoundError" || name === "OverconstrainedError") throw new MicError("missing", "No microphone was found.");
      throw new MicError("failed", `The microphone could not be opened: ${(e as Error).message}`);
    }
    const g = await this.ready();
    void g.ctx.resume();
    this.mic = stream;
    this.micNode = g.ctx.createMediaStreamSource(stream);
    // The worklet still sees the microphone: the fallback source and the capture tap (test hook, benches).
    this.micNode.connect(g.capture);
    this.sendTrack(g, stream);
  }

  /**
   * Hands the worker the microphone track's own chunks, ~10 ms earlier than the capture worklet
   * gets them (framer.ts). Where the browser has no MediaStreamTrackProcessor, or cannot
   * transfer its stream, or the page's URL says `?capture=worklet`, the worklet stays the source.
   */
  private sendTrack(g: Graph, stream: MediaStream): void {
    const Processor = (globalThis as { MediaStreamTrackProcessor?: new (o: { track: MediaStreamTrack }) => { readable: ReadableStream } }).MediaStreamTrackProcessor;
    const track = stream.getAudioTracks()[0];
    if (!Processor || !track || g.where !== "worker") return;
    // `?capture=worklet` keeps the worklet as the source: a side-by-side in bench/browser-latency.mjs.
    if (new URLSearchParams(globalThis.location?.search ?? "").get("capture") === "worklet") return;
    try {
      const { readable } = new Processor({ track });
      g.send({ t: "track", readable }, [readable as unknown as Transferable]);
    } catch {
      // The worklet stays the source.
    }
  }

  startSending(onFrame: (opus: Uint8Array, captureUs: number, redundant?: RedundantFrame) => void): void {
    this.onFrame = onFrame;
    this.adapter.restart();
    void this.ready().then((g) => {
      const ts = g.ctx.getOutputTimestamp();
      const perf = ts.performanceTime ?? performance.now();
      const origin = (performance.timeOrigin + perf - (ts.contextTime ?? g.ctx.currentTime) * 1000 - g.ctx.baseLatency * 1000) * 1000;
      g.send({ t: "send", on: true, origin });
    });
  }

  stopSending(): void {
    this.onFrame = undefined;
    void this.graph?.then((g) => g.send({ t: "send", on: false, origin: 0 }));
  }

  receive(n: number, captureUs: number | undefined, opus: Uint8Array, redundant?: RedundantFrame): void {
    // Stamped now, as read: the playout controller measures jitter from these (worklet.ts PlayoutPacket).
    const packet: PlayoutPacket = { n, captureUs, arrivalMs: performance.now(), opus: opus.slice().buffer };
    const transfer = [packet.opus];
    if (redundant) {
      packet.redundant = { k: redundant.k, opus: redundant.opus.slice().buffer };
      transfer.push(packet.redundant.opus);
    }
    void this.graph?.then((g) => g.playout.port.postMessage({ packet }, transfer));
  }

  rxReport(): RxReport | undefined {
    // Arrivals are stamped with performance.now(): the report's time is on that clock too.
    void this.graph?.then((g) => g.playout.port.postMessage({ report: performance.now() }));
    return this.lastRx;
  }

  peerReport(rx: RxReport): void {
    const s = this.adapter.report(rx, performance.now());
    if (s) void this.graph?.then((g) => g.send({ t: "tune", packetLossPercent: s.loss_perc, bitrate: s.bitrate }));
  }

  setPlayout(on: boolean): void {
    this.playing = on;
    if (this.rtpIn) this.rtpIn.element.muted = !on;
    void this.ready().then((g) => g.playout.port.postMessage({ play: on }));
  }

  setMuted(on: boolean): void {
    this.muted = on;
    // RTP mode: a disabled track is sent as silence (RTP goes on, so the frame numbers do).
    if (this.rtpOut) for (const t of this.mic?.getAudioTracks() ?? []) t.enabled = !on;
    void this.graph?.then((g) => g.send({ t: "mute", on }));
  }

  sendRtp(rtp: RtpAudio | null): void {
    const track = this.mic?.getAudioTracks().find((t) => t.readyState === "live") ?? null;
    if (rtp) {
      if (track) track.enabled = !this.muted;
      this.rtpOut = rtp;
      rtp.sendTrack(track).catch((e: unknown) => (this.lastError = `cannot send the microphone over WebRTC: ${(e as Error).message}`));
    } else {
      const was = this.rtpOut;
      this.rtpOut = undefined;
      if (track) track.enabled = true;
      was?.sendTrack(null).catch(() => undefined);
    }
  }

  receiveRtp(rtp: RtpAudio | null): void {
    if (this.rtpIn?.rtp === rtp) return;
    const old = this.rtpIn;
    this.rtpIn = undefined;
    if (old) {
      old.node?.disconnect();
      void this.graph?.then((g) => g.playout.port.postMessage({ rtp: false }));
      // Between calls the element keeps playing the remote track, muted: paused or detached,
      // Chromium stops draining the track's jitter buffer, and the next call on this
      // connection would open with the last 40-300 ms of this one.
      old.element.muted = true;
      this.rtpIdle = old.element;
      this.rtpIdleOf = old.rtp;
    }
    if (!rtp) return;
    let element: HTMLAudioElement;
    if (this.rtpIdle && this.rtpIdleOf === rtp) {
      element = this.rtpIdle;
      this.rtpIdle = undefined;
      this.rtpIdleOf = undefined;
      element.muted = !this.playing;
    } else {
      this.dropIdleRtp();
      // An <audio> element plays it: the usual path of WebRTC audio (echo cancellation), and without
      // one Chromium gives a remote track's WebAudio source no samples.
      element = new Audio();
      element.autoplay = true;
      element.muted = !this.playing;
      element.srcObject = rtp.remoteStream;
      element.play().catch((e: unknown) => (this.lastError = `cannot play the call's audio: ${(e as Error).message}`));
    }
    const entry: NonNullable<AudioEngine["rtpIn"]> = { rtp, element, node: undefined };
    this.rtpIn = entry;
    void this.ready().then((g) => {
      const tracks = rtp.remoteStream.getAudioTracks();
      if (this.rtpIn !== entry || tracks.length === 0) return;
      entry.node = g.ctx.createMediaStreamSource(new MediaStream(tracks));
      entry.node.connect(g.playout);
      g.playout.port.postMessage({ rtp: true });
    });
  }

  /** Stops the idle element: another connection's track plays now. */
  private dropIdleRtp(): void {
    if (!this.rtpIdle) return;
    this.rtpIdle.pause();
    this.rtpIdle.srcObject = null;
    this.rtpIdle = undefined;
    this.rtpIdleOf = undefined;
  }

  tone(kind: ToneKind | null): void {
    void this.ready().then((g) => g.tones.start(kind));
  }

  dtmf(digit: string): void {
    void this.ready().then((g) => g.tones.dtmf(digit));
  }

  close(): void {
    this.onFrame = undefined;
    // The next call starts from the fixed settings until its peer reports.
    this.adapter = new SenderAdapter();
    this.lastRx = undefined;
    this.sendRtp(null);
    // (A call's end: the RTP element stays, muted, for the connection's next call.)
    this.receiveRtp(null);
    this.muted = false;
    for (const t of this.mic?.getTracks() ?? []) t.stop();
    this.micNode?.disconnect();
    this.mic = undefined;
    this.micNode = undefined;
    void this.graph?.then((g) => {
      g.tones.start(null);
      g.send({ t: "send", on: false, origin: 0 });
      g.send({ t: "mute", on: false });
      g.send({ t: "reset" });
      g.send({ t: "tune", packetLossPercent: INITIAL_SETTINGS.loss_perc, bitrate: INITIAL_SETTINGS.bitrate });
      g.playout.port.postMessage({ reset: true, play: true });
    });
  }

  // ----------------------------------------------------------- test hooks --

  /** Starts (or stops) recording what the playout plays, or what the microphone captures. */
  async record(on: boolean, node: "playout" | "capture" = "playout"): Promise<void> {
    (await this.ready())[node].port.postMessage({ record: on });
  }

  /** How many samples were recorded since {@link record} (cheap: nothing is copied). */
  async recorded(node: "playout" | "capture" = "playout"): Promise<number> {
    const g = await this.ready();
    return new Promise((resolve) => {
      this.pendingCount[node].push(resolve);
      g[node].port.postMessage({ count: true });
    });
  }

  /** What was recorded since {@link record}. */
  async dump(node: "playout" | "capture" = "playout"): Promise<Recording> {
    const g = await this.ready();
    const r = await new Promise<Dump>((resolve) => {
      this.pendingDump[node] = resolve;
      g[node].port.postMessage({ dump: true });
    });
    const ts = g.ctx.getOutputTimestamp();
    const perf = ts.performanceTime ?? performance.now();
    const base = g.ctx.baseLatency * 1000;
    const output = (g.ctx.outputLatency || 0) * 1000;
    const settings = this.mic?.getAudioTracks()[0]?.getSettings() as (MediaTrackSettings & { latency?: number }) | undefined;
    // Context time t reaches the speaker at P(t); it is rendered base + output latency earlier.
    const heard = performance.timeOrigin + perf + (r.startFrame / r.rate - (ts.contextTime ?? g.ctx.currentTime)) * 1000;
    const startMs = node === "playout" ? heard : heard - base - output;
    return { pcm: r.pcm, rate: r.rate, startMs, latency: { base, output, input: (settings?.latency ?? 0) * 1000 } };
  }

  async playoutStats(): Promise<PlayoutReport> {
    const g = await this.ready();
    return new Promise((resolve) => {
      this.pendingStats.push(resolve);
      g.playout.port.postMessage({ stats: true });
    });
  }

  /** The encoder's counters, and what the peer's reports made of its settings (quality.md §4.2). */
  async codecStats(): Promise<HostStats & { adapt: SenderAdapter["stats"] & { settings: EncoderSettings } }> {
    const g = await this.ready();
    const host = await new Promise<HostStats>((resolve) => {
      this.pendingHostStats.push(resolve);
      g.send({ t: "stats" });
    });
    return { ...host, adapt: { ...this.adapter.stats, settings: { ...this.adapter.settings } } };
  }
}
