// One call to the bot over plain WebRTC, as Pipecat's SmallWebRTC transport expects it: the microphone as the
// first (audio) transceiver, RTVI messages as JSON on a data channel named "chat", and the offer posted to
// /api/offer on this same origin (the bot sends no CORS headers). No STUN unless the bot's config names servers.

const RTVI_LABEL = "rtvi-ai";
const RTVI_VERSION = "2.2.0"; // the protocol Pipecat 1.14 speaks
const GATHER_TIMEOUT_MS = 3000; // host candidates take milliseconds; a configured STUN server a little longer

export class CallError extends Error {}

/** A call: `start()`, then `message` events (RTVI), `track` (the bot's audio), `ended` (a reason). */
export class BotCall extends EventTarget {
  constructor({ iceServers = [], voice = null } = {}) {
    super();
    this.iceServers = iceServers;
    this.voice = voice;
    this.pc = null;
    this.channel = null;
    this.pending = new Map(); // RTVI request id -> {resolve, reject}
    this.closed = false;
  }

  /** Connect with the microphone's track; resolves once the bot has answered the offer. */
  async start(micTrack) {
    const pc = new RTCPeerConnection({ iceServers: this.iceServers });
    this.pc = pc;
    pc.addTransceiver(micTrack, { direction: "sendrecv" });
    this.channel = pc.createDataChannel("chat", { ordered: true });
    this.channel.onopen = () => this.send("client-ready", {
      version: RTVI_VERSION,
      about: { library: "voiceclone-page", library_version: "0.1.0" },
    });
    this.channel.onmessage = (event) => this.receive(event.data);
    this.channel.onclose = () => this.end("the bot ended the call");
    pc.ontrack = (event) => this.dispatchEvent(new CustomEvent("track", { detail: event.streams[0] || new MediaStream([event.track]) }));
    pc.onconnectionstatechange = () => {
      if (pc.connectionState === "failed") this.end("the call's connection failed (WebRTC could not reach the bot)");
      if (pc.connectionState === "closed") this.end("the call ended");
    };
    await pc.setLocalDescription(await pc.createOffer());
    await gathered(pc);
    const answer = await postOffer({
      sdp: pc.localDescription.sdp,
      type: pc.localDescription.type,
      request_data: this.voice ? { voice: this.voice } : {},
    });
    this.pcId = answer.pc_id;
    await pc.setRemoteDescription({ sdp: answer.sdp, type: answer.type });
  }

  /** An RTVI client message; resolves with the bot's response data, rejects with its error. */
  request(t, d) {
    const id = this.send("client-message", { t, d });
    return new Promise((resolve, reject) => this.pending.set(id, { resolve, reject }));
  }

  send(type, data) {
    const id = Math.random().toString(36).slice(2, 10);
    if (this.channel && this.channel.readyState === "open") {
      this.channel.send(JSON.stringify({ label: RTVI_LABEL, type, id, data }));
    }
    return id;
  }

  receive(text) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      return;
    }
    if (message.type === "signalling" && message.message?.type === "peerLeft") {
      this.end("the bot ended the call");
      return;
    }
    if (message.label !== RTVI_LABEL) return;
    const waiting = this.pending.get(message.id);
    if (waiting && (message.type === "server-response" || message.type === "error-response")) {
      this.pending.delete(message.id);
      if (message.type === "server-response") waiting.resolve(message.data?.d);
      else waiting.reject(new CallError(message.data?.error || "the bot refused"));
    }
    this.dispatchEvent(new CustomEvent("message", { detail: message }));
  }

  /** Hang up: tell the bot (so it stops at once), then close the connection. */
  hangUp() {
    if (this.closed) return;
    this.send("disconnect-bot", {});
    this.end("you hung up");
  }

  end(reason) {
    if (this.closed) return;
    this.closed = true;
    for (const { reject } of this.pending.values()) reject(new CallError(reason));
    this.pending.clear();
    setTimeout(() => this.pc?.close(), 100); // let the disconnect message leave first
    this.dispatchEvent(new CustomEvent("ended", { detail: reason }));
  }
}

/** Wait until ICE gathering completes (the offer then carries every candidate: no trickle needed). */
function gathered(pc) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(resolve, GATHER_TIMEOUT_MS);
  });
}

async function postOffer(offer) {
  let response;
  try {
    response = await fetch("/api/offer", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify(offer),
    });
  } catch {
    throw new CallError(`Cannot reach the bot at ${location.origin}: is \`voiceclone run-bot\` still running?`);
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw new CallError(typeof body.detail === "string" ? body.detail : `the bot refused the call (HTTP ${response.status})`);
  }
  return body;
}
