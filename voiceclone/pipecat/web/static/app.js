// The page: a call with the bot (what it heard and said, its state, each turn's latency), the voice picker, and
// "Record my voice". `window.voiceclone` exposes the page's state to test drivers.
import { BotCall, CallError } from "./call.js";
import { record } from "./recorder.js";

const $ = (id) => document.getElementById(id);
const RECORD_SECONDS = 15;
const SPEECH_LEVEL = 0.02; // microphone peak above which the caller counts as speaking (for latency)
const CALL_AUDIO = { echoCancellation: true, noiseSuppression: true, autoGainControl: true };

const page = {
  call: null,
  micStream: null,
  state: "idle",
  transcript: [], // {who: "user" | "bot", text}
  turns: [], // seconds from the end of the caller's speech to the bot's first sound
  botPeak: 0, // loudest bot sample seen since connecting (test drivers check the audio plays)
  voice: null,
  lastSpoke: 0, // when the microphone last heard speech (performance.now(), ms)
  turnEnd: null, // {speechEnd, botStarted} while waiting to hear the bot answer
  shownSegments: new Set(), // bot-output segment ids already in the transcript
  pendingBotTurn: null, // the bot's measure of a turn the page has not heard the answer to yet
  config: { ice_servers: [] },
};
window.voiceclone = page;

// ------------------------------------------------------------------------------------------------ notices
function notice(text, kind = "error") {
  const box = $("notice");
  box.hidden = !text;
  box.textContent = text ? text[0].toUpperCase() + text.slice(1) : "";
  box.className = `notice ${kind === "info" ? "info" : ""}`;
}

function microphoneProblem(error) {
  switch (error?.name) {
    case "NotAllowedError":
    case "SecurityError":
      return "The microphone was refused: allow it for this page (the icon in the address bar), then try again.";
    case "NotFoundError":
    case "OverconstrainedError":
      return "No microphone was found: plug one in (or enable it in the system's settings), then try again.";
    case "NotReadableError":
    case "AbortError":
      return "The microphone cannot be opened: another program may be using it; close that, then try again.";
    default:
      return `The microphone cannot be used: ${error?.message || error}.`;
  }
}

function insecureOrigin() {
  if (window.isSecureContext && navigator.mediaDevices?.getUserMedia) return null;
  return `Browsers allow the microphone only on https:// or http://localhost: open http://localhost:${location.port || 80}/ on the bot's computer (or serve the bot over https).`;
}

async function getJSON(url) {
  let response;
  try {
    response = await fetch(url, { cache: "no-store" });
  } catch {
    throw new CallError(`Cannot reach the bot at ${location.origin}: is \`voiceclone run-bot\` still running?`);
  }
  const body = await response.json().catch(() => ({}));
  if (!response.ok) throw new CallError(body.detail || `HTTP ${response.status} from ${url}`);
  return body;
}

// ------------------------------------------------------------------------------------------------ voices
async function loadVoices(select = null) {
  const { voices, default: fallback } = await getJSON("/api/voices");
  const picker = $("voice");
  const chosen = select || page.voice || fallback;
  picker.replaceChildren(
    ...voices.map((v) => {
      const option = new Option(v.name, v.name);
      option.title = `${Math.round(v.speech_s ?? 0)} s of speech; consent: ${v.consent}`;
      option.selected = v.name === chosen;
      return option;
    }),
  );
  picker.disabled = voices.length === 0;
  page.voice = picker.value || null;
}

async function switchVoice(name) {
  page.voice = name;
  if (!page.call || page.call.closed) return;
  $("voice-note").textContent = `Switching to ${name}…`;
  try {
    await page.call.request("switch-voice", { voice: name });
    $("voice-note").textContent = `Now speaking as ${name} (from the next sentence).`;
  } catch (error) {
    notice(`The voice could not be switched: ${error.message}`);
  }
}

// ------------------------------------------------------------------------------------------------ the call
function setState(state, label) {
  page.state = state;
  const pill = $("state");
  pill.dataset.state = state;
  pill.textContent = label;
}

function say(who, text) {
  page.transcript.push({ who, text });
  const item = document.createElement("li");
  item.className = who;
  const tag = document.createElement("span");
  tag.className = "who";
  tag.textContent = { user: "you (as the bot heard you)", bot: "bot", system: "" }[who];
  item.append(tag, document.createTextNode(text));
  $("transcript").append(item);
  item.scrollIntoView({ block: "nearest" });
}

function onMessage({ type, data }) {
  const now = performance.now();
  switch (type) {
    case "bot-ready":
      setState("listening", "listening");
      break;
    case "user-started-speaking":
      page.turnEnd = null;
      setState("user-speaking", "you are speaking");
      break;
    case "user-stopped-speaking":
      // The bot decides the turn is over some time after the last word; the latency counts from that word
      // to the bot's first sound in this page (see the bot meter in `connect`).
      page.turnEnd = { speechEnd: now - page.lastSpoke < 5000 ? page.lastSpoke : now, botStarted: null };
      setState("thinking", "thinking");
      break;
    case "bot-started-speaking":
      if (page.turnEnd) page.turnEnd.botStarted = now;
      setState("speaking", "speaking");
      break;
    case "bot-stopped-speaking":
      setState("listening", "listening");
      break;
    case "user-input":
      if (data.final && data.text?.trim()) say("user", data.text.trim());
      break;
    case "bot-output":
      // A sentence comes when the bot starts saying it, and again once said: shown once.
      if (data.text?.trim() && !page.shownSegments.has(data.segment_id)) {
        page.shownSegments.add(data.segment_id);
        say("bot", data.text.trim());
      }
      break;
    case "server-message":
      if (data?.type === "voiceclone-latency") botMeasured(data);
      break;
    case "error":
      notice(`The bot reported: ${data.error}`);
      break;
  }
}

// The bot's own measure of a turn (from the last sound of the speech as it reached the bot, to its first audio
// leaving), shown beside the page's; it may come before or after the page hears the answer.
function botMeasured(turn) {
  const labels = { heard: "end heard", turn_end: "turn end", stt: "STT", llm: "LLM", tts: "TTS", other: "other" };
  const parts = Object.entries(turn.parts_ms || {})
    .filter(([, ms]) => ms > 0)
    .map(([part, ms]) => `${labels[part] || part} ${(ms / 1000).toFixed(2)}`)
    .join(", ");
  const text = ` · the bot's own measure ${(turn.total_ms / 1000).toFixed(2)} s${parts ? `: ${parts}` : ""}`;
  const last = $("turns").lastElementChild;
  if (last && !last.dataset.bot) {
    last.dataset.bot = "yes";
    last.append(Object.assign(document.createElement("span"), { className: "hint", textContent: text }));
  } else {
    page.pendingBotTurn = text;
  }
}

function recordTurn(now) {
  const seconds = (now - page.turnEnd.speechEnd) / 1000;
  page.turns.push(seconds);
  page.turnEnd = null;
  const item = document.createElement("li");
  item.textContent = `${seconds.toFixed(2)} s`;
  if (seconds > 1.5) item.className = "slow";
  $("turns").append(item);
  if (page.pendingBotTurn) {
    item.dataset.bot = "yes";
    item.append(Object.assign(document.createElement("span"), { className: "hint", textContent: page.pendingBotTurn }));
    page.pendingBotTurn = null;
  }
  const sorted = [...page.turns].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  const median = sorted.length % 2 ? sorted[Math.floor(middle)] : (sorted[middle - 1] + sorted[middle]) / 2;
  $("latency-summary").textContent = `median ${median.toFixed(2)} s over ${sorted.length} turn(s)`;
}

// Every 10 ms over the last ~10 ms of audio: the turn latencies the page shows are read from these levels, so a
// coarser meter would add up to its period to every figure.
const METER_MS = 10;

function meter(stream, bar, onLevel) {
  const context = new AudioContext();
  const analyser = context.createAnalyser();
  analyser.fftSize = 512;
  context.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let peak = 0;
    for (const value of samples) peak = Math.max(peak, Math.abs(value));
    bar.style.width = `${Math.min(100, peak * 140)}%`;
    onLevel(peak);
  }, METER_MS);
  return () => {
    clearInterval(timer);
    context.close();
    bar.style.width = "0";
  };
}

async function connect() {
  notice(null);
  const button = $("connect");
  button.disabled = true;
  const audio = $("bot-audio");
  audio.srcObject = new MediaStream();
  audio.play().catch(() => {}); // started from this click, so the browser lets the bot be heard
  setState("connecting", "connecting…");
  try {
    page.micStream = await navigator.mediaDevices.getUserMedia({ audio: CALL_AUDIO });
  } catch (error) {
    notice(microphoneProblem(error));
    return hungUp();
  }
  const call = new BotCall({ iceServers: page.config.ice_servers, voice: page.voice });
  page.call = call;
  page.botPeak = 0;
  const stops = [
    meter(page.micStream, $("mic-level"), (peak) => {
      if (peak > SPEECH_LEVEL) page.lastSpoke = performance.now();
    }),
  ];
  call.addEventListener("message", (event) => onMessage(event.detail));
  call.addEventListener("track", (event) => {
    audio.srcObject = event.detail;
    audio.play().catch((error) => notice(`The bot's audio cannot play: ${error.message}`));
    stops.push(
      meter(event.detail, $("bot-level"), (peak) => {
        page.botPeak = Math.max(page.botPeak, peak);
        if (peak > SPEECH_LEVEL && page.turnEnd?.botStarted) recordTurn(performance.now());
      }),
    );
  });
  call.addEventListener("ended", (event) => {
    stops.forEach((stop) => stop());
    if (call.pcId && event.detail !== "you hung up") say("system", `Call ended: ${event.detail}.`);
    hungUp();
  });
  try {
    await call.start(page.micStream.getAudioTracks()[0]);
  } catch (error) {
    notice(error instanceof CallError ? error.message : `The call could not start: ${error.message}`);
    call.end("it could not start");
    return;
  }
  button.textContent = "Hang up";
  button.className = "danger";
  button.disabled = false;
  setState("connecting", "waiting for the bot…");
}

function hungUp() {
  page.micStream?.getTracks().forEach((track) => track.stop());
  page.micStream = null;
  const button = $("connect");
  button.textContent = "Connect";
  button.className = "primary";
  button.disabled = Boolean(insecureOrigin());
  setState("idle", "not connected");
}

// ------------------------------------------------------------------------------------------------ recording
let consentDate = null;

function suggestVoiceName() {
  const field = $("voice-name");
  if (field.dataset.edited) return;
  field.value = $("speaker")
    .value.normalize("NFKD")
    .replace(/[^\w .-]/g, "")
    .trim()
    .toLowerCase()
    .replace(/[\s_]+/g, "-")
    .replace(/^[^a-z0-9]+/, "")
    .slice(0, 64);
}

async function showConsent() {
  const speaker = $("speaker").value.trim();
  suggestVoiceName();
  consentDate = null;
  if (!speaker) {
    $("consent").textContent = "Type your name to see the sentence.";
    return updateRecordButton();
  }
  try {
    const consent = await getJSON(`/api/consent?speaker=${encodeURIComponent(speaker)}`);
    if ($("speaker").value.trim() !== speaker) return; // typed on meanwhile
    $("consent").textContent = consent.sentence;
    consentDate = consent.date;
  } catch (error) {
    $("consent").textContent = error.message;
  }
  updateRecordButton();
}

function updateRecordButton() {
  $("record").disabled = Boolean(insecureOrigin()) || !consentDate || !$("voice-name").value;
}

async function recordVoice() {
  notice(null);
  const button = $("record");
  const report = $("report");
  report.hidden = true;
  const sender = page.call?.pc?.getSenders().find((s) => s.track?.kind === "audio");
  if (sender) sender.track.enabled = false; // the bot should not answer the consent sentence
  let session;
  try {
    session = await record(RECORD_SECONDS, (elapsed, peak) => {
      $("timer").textContent = `0:${String(Math.floor(elapsed)).padStart(2, "0")} / 0:${RECORD_SECONDS}`;
      $("record-level").style.width = `${Math.min(100, peak * 140)}%`;
    });
  } catch (error) {
    if (sender) sender.track.enabled = true;
    notice(microphoneProblem(error));
    return;
  }
  button.textContent = "Stop";
  button.onclick = () => session.stop();
  const wav = await session.done;
  if (sender) sender.track.enabled = true;
  $("record-level").style.width = "0";
  button.textContent = "Making the voice…";
  button.disabled = true;
  button.onclick = recordVoice;
  await upload(wav);
  button.textContent = `Record (${RECORD_SECONDS} s)`;
  updateRecordButton();
}

async function upload(wav) {
  const query = new URLSearchParams({ name: $("voice-name").value, speaker: $("speaker").value.trim(), date: consentDate });
  const report = $("report");
  let response, body;
  try {
    response = await fetch(`/api/voices?${query}`, { method: "POST", headers: { "Content-Type": "audio/wav" }, body: wav });
    body = await response.json().catch(() => ({}));
  } catch {
    return showReport(false, `Cannot reach the bot at ${location.origin}: is \`voiceclone run-bot\` still running?`);
  }
  if (!response.ok) return showReport(false, body.detail || `the bot refused the recording (HTTP ${response.status})`);
  showReport(true, `Voice “${body.voice}” is ready.`, body.quality, body.consent);
  await loadVoices(body.voice);
  await switchVoice(body.voice);
}

function showReport(ok, headline, quality = null, consent = null) {
  const report = $("report");
  report.hidden = false;
  report.className = `report ${ok ? "ok" : "bad"}`;
  report.replaceChildren(Object.assign(document.createElement("strong"), { textContent: headline }));
  if (!quality) return;
  const rows = [
    ["recording", `${quality.duration_s} s`],
    ["speech", `${quality.speech_s} s`],
    ["level", `${quality.speech_level_dbfs} dBFS`],
    ["background", quality.background],
    ["clipping", `${quality.clipped_percent}% of samples`],
    ["consent", consent ? `heard “${consent.heard}” (${Math.round(consent.score * 100)}% of the words)` : "not stored"],
  ];
  const list = document.createElement("dl");
  for (const [name, value] of rows) {
    list.append(Object.assign(document.createElement("dt"), { textContent: name }));
    list.append(Object.assign(document.createElement("dd"), { textContent: value }));
  }
  report.append(list);
  if (quality.warnings.length) {
    const warnings = document.createElement("ul");
    quality.warnings.forEach((w) => warnings.append(Object.assign(document.createElement("li"), { textContent: w })));
    report.append(warnings);
  }
}

// ------------------------------------------------------------------------------------------------ start
async function init() {
  $("connect").onclick = () => (page.call && !page.call.closed ? page.call.hangUp() : connect());
  $("voice").onchange = (event) => switchVoice(event.target.value);
  $("record").onclick = recordVoice;
  window.addEventListener("pagehide", () => page.call?.hangUp()); // a closed tab frees its place at once
  let typing;
  $("speaker").oninput = () => {
    clearTimeout(typing);
    typing = setTimeout(showConsent, 250);
  };
  $("voice-name").oninput = (event) => {
    event.target.dataset.edited = "yes";
    updateRecordButton();
  };
  const insecure = insecureOrigin();
  if (insecure) notice(insecure);
  try {
    page.config = await getJSON("/api/config");
    await loadVoices();
  } catch (error) {
    notice(error.message);
    return;
  }
  $("connect").disabled = Boolean(insecure);
}

init();
