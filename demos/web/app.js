// voxwire browser demo: microphone -> voxwire over WebRTC or WebSocket; live transcripts,
// classification badges and spoken replies. No build step: plain browser JavaScript.
"use strict";

const CALLS_URL = "/v1/realtime/calls";
const WS_PATH = "/v1/realtime?model=voxwire";
const FRAME_MS = 20;
const MAX_WS_BUFFERED = 1 << 20; // bytes waiting in the socket; beyond this, frames are dropped
const ICE_GATHERING_MS = 2000;

const $ = (id) => document.getElementById(id);
const ui = {
  start: $("start"),
  stop: $("stop"),
  status: $("status"),
  error: $("error"),
  level: $("level"),
  transcript: $("transcript"),
  remote: $("remote"),
  apiKey: $("api-key"),
};

let call = null; // everything of the running session; null when stopped

// -- the page -------------------------------------------------------------------------

function setStatus(text, state) {
  ui.status.textContent = text;
  ui.status.dataset.state = state;
}

function showError(message) {
  ui.error.textContent = message;
  ui.error.hidden = false;
  setStatus("stopped", "error");
  console.error("voxwire:", message);
}

function clearError() {
  ui.error.hidden = true;
  ui.error.textContent = "";
}

function chosenMode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

function chosenClassifiers() {
  return [...document.querySelectorAll('input[name="classifier"]:checked')].map((e) => e.value);
}

function sessionOptions(rate) {
  const session = {
    type: "realtime",
    "voxwire.classifiers": chosenClassifiers(),
    voxwire: { tentative_transcripts: true },
  };
  if (rate) session.audio = { input: { format: { type: "audio/pcm", rate } } };
  return session;
}

// One <li> per conversation item: the person's words (partial, then final) with badges,
// or voxwire's reply.
const items = new Map();

function itemRow(itemId, who) {
  let row = items.get(itemId);
  if (!row) {
    const li = document.createElement("li");
    li.className = who;
    li.dataset.itemId = itemId;
    const label = document.createElement("span");
    label.className = "who";
    const text = document.createElement("span");
    text.className = "text partial";
    const tentative = document.createElement("span");
    tentative.className = "tentative";
    const badges = document.createElement("span");
    badges.className = "badges";
    li.append(label, text, tentative, badges);
    ui.transcript.append(li);
    row = { li, text, tentative, badges, partial: "" };
    items.set(itemId, row);
  }
  return row;
}

function addBadge(row, text, kind) {
  const badge = document.createElement("span");
  badge.className = "badge" + (kind ? " " + kind : "");
  badge.textContent = text;
  row.badges.append(badge);
  row.li.scrollIntoView({ block: "nearest" });
}

function note(text, kind) {
  const row = itemRow("note-" + Math.random().toString(36).slice(2), "note");
  row.text.className = "text";
  addBadge(row, text, kind);
}

// -- server events (the same on the data channel and on the WebSocket) -------------------

function onServerEvent(event) {
  switch (event.type) {
    case "session.created":
    case "session.updated":
      call.outputRate = event.session?.audio?.output?.format?.rate || call.outputRate;
      if (call.onSession) call.onSession(event);
      break;
    case "input_audio_buffer.speech_started":
      itemRow(event.item_id, "user");
      stopPlayback(); // barge-in: the server cancels the reply; stop what is queued here
      break;
    case "conversation.item.input_audio_transcription.delta": {
      const row = itemRow(event.item_id, "user");
      row.partial += event.delta;
      row.text.textContent = row.partial;
      break;
    }
    case "voxwire.transcription.tentative": {
      // Not yet stable: shown greyed after the committed words, replaced by the next one.
      const row = itemRow(event.item_id, "user");
      row.tentative.textContent = (row.partial ? " " : "") + event.text;
      break;
    }
    case "conversation.item.input_audio_transcription.completed": {
      const row = itemRow(event.item_id, "user");
      row.text.textContent = event.transcript.trim();
      row.text.className = "text final";
      row.tentative.textContent = "";
      break;
    }
    case "conversation.item.input_audio_transcription.failed": {
      const row = itemRow(event.item_id, "user");
      row.text.className = "text failed";
      row.tentative.textContent = "";
      addBadge(row, "not transcribed: " + (event.error?.message || "failed"), "error");
      break;
    }
    case "voxwire.classification": {
      const row = itemRow(event.item_id, "user");
      if (event.error) addBadge(row, `${event.classifier}: ${event.error.message || "failed"}`, "error");
      else if (event.labels?.length) addBadge(row, `${event.classifier}: ${event.labels[0].label}`);
      break;
    }
    case "voxwire.speaker.identified":
      addBadge(itemRow(event.item_id, "user"), `speaker: ${event.speaker}`);
      break;
    case "voxwire.wake_word.detected":
      note(`wake word: ${event.name} (${event.score.toFixed(2)})`, "wake");
      break;
    case "response.output_audio_transcript.delta": {
      const row = itemRow("reply-" + event.response_id, "assistant");
      row.partial += event.delta;
      row.text.textContent = row.partial;
      break;
    }
    case "response.output_audio_transcript.done": {
      const row = itemRow("reply-" + event.response_id, "assistant");
      row.text.className = "text final";
      break;
    }
    case "response.done": {
      const row = items.get("reply-" + event.response?.id);
      if (row && event.response.status === "cancelled") {
        row.text.className = "text cancelled";
        addBadge(row, "interrupted");
      } else if (row) {
        row.text.className = "text final";
      }
      break;
    }
    case "response.output_audio.delta":
      playPcm16(event.delta);
      break;
    case "error":
      showError("voxwire: " + (event.error?.message || "error"));
      if (call) setStatus(call.liveText, "live");
      break;
  }
}

// -- microphone and level meter -------------------------------------------------------

async function openMicrophone() {
  if (!navigator.mediaDevices?.getUserMedia) {
    throw new Error(
      "This browser gives no microphone here: open the page over https or on localhost.");
  }
  try {
    return await navigator.mediaDevices.getUserMedia({
      audio: { channelCount: 1, echoCancellation: true, noiseSuppression: true },
    });
  } catch (err) {
    if (err.name === "NotAllowedError" || err.name === "SecurityError") {
      throw new Error("Microphone access was refused. Allow the microphone for this page, then press Start again.");
    }
    if (err.name === "NotFoundError") throw new Error("No microphone was found.");
    throw new Error(`The microphone could not be opened: ${err.message || err.name}`);
  }
}

function startMeter(stream) {
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  analyser.fftSize = 1024;
  ctx.createMediaStreamSource(stream).connect(analyser);
  const samples = new Float32Array(analyser.fftSize);
  const timer = setInterval(() => {
    analyser.getFloatTimeDomainData(samples);
    let sum = 0;
    for (const s of samples) sum += s * s;
    const db = 10 * Math.log10(sum / samples.length + 1e-10); // dBFS
    const percent = Math.max(0, Math.min(100, ((db + 60) / 60) * 100));
    ui.level.style.width = percent.toFixed(0) + "%";
    ui.level.dataset.peak = Math.max(Number(ui.level.dataset.peak || 0), percent).toFixed(0);
  }, 50);
  return () => {
    clearInterval(timer);
    ui.level.style.width = "0";
    ctx.close();
  };
}

// -- reply playback over the WebSocket (WebRTC plays the reply track in <audio>) --------

function playPcm16(base64) {
  if (!call || !call.player) return;
  const bytes = Uint8Array.from(atob(base64), (c) => c.charCodeAt(0));
  const pcm = new Int16Array(bytes.buffer, 0, bytes.length >> 1);
  if (!pcm.length) return;
  const ctx = call.player;
  const buffer = ctx.createBuffer(1, pcm.length, call.outputRate);
  const channel = buffer.getChannelData(0);
  for (let i = 0; i < pcm.length; i++) channel[i] = pcm[i] / 32768;
  const source = ctx.createBufferSource();
  source.buffer = buffer;
  source.connect(ctx.destination);
  const at = Math.max(ctx.currentTime + 0.05, call.playAt);
  source.start(at);
  call.playAt = at + buffer.duration;
  ui.remote.dataset.chunksPlayed = String(Number(ui.remote.dataset.chunksPlayed || 0) + 1);
  call.playing.add(source);
  source.onended = () => call?.playing.delete(source);
}

function stopPlayback() {
  if (!call || !call.playing) return;
  for (const source of call.playing) source.stop();
  call.playing.clear();
  call.playAt = 0;
}

// -- WebRTC ---------------------------------------------------------------------------

function authHeaders() {
  const key = ui.apiKey.value.trim();
  return key ? { Authorization: "Bearer " + key } : {};
}

function iceGatheringDone(pc, timeoutMs) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      if (pc.iceGatheringState === "complete") finish();
    };
    const finish = () => {
      pc.removeEventListener("icegatheringstatechange", done);
      resolve();
    };
    pc.addEventListener("icegatheringstatechange", done);
    setTimeout(finish, timeoutMs); // send what we have; the server learns the rest
  });
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return body.error?.message || JSON.stringify(body);
  } catch {
    return response.statusText;
  }
}

async function startWebRTC(stream) {
  const pc = new RTCPeerConnection(); // host candidates: no STUN lookups
  call.pc = pc;
  for (const track of stream.getAudioTracks()) pc.addTrack(track, stream);
  pc.ontrack = (e) => {
    ui.remote.srcObject = e.streams[0] || new MediaStream([e.track]);
    ui.remote.play().catch(() => {});
  };
  pc.onconnectionstatechange = () => {
    if (call?.pc !== pc) return;
    if (pc.connectionState === "failed") {
      fail("The WebRTC connection failed: the browser could not reach the server (a TURN server may be needed).");
    }
  };
  const channel = pc.createDataChannel("oai-events");
  call.channel = channel;
  channel.onmessage = (e) => onServerEvent(JSON.parse(e.data));
  channel.onopen = () => setStatus(call.liveText, "live");
  channel.onclose = () => {
    if (call?.channel === channel) fail("The server ended the call.");
  };
  await pc.setLocalDescription(await pc.createOffer());
  await iceGatheringDone(pc, ICE_GATHERING_MS);
  const form = new FormData();
  form.append("sdp", pc.localDescription.sdp);
  form.append("session", JSON.stringify(sessionOptions()));
  let response;
  try {
    response = await fetch(CALLS_URL, { method: "POST", body: form, headers: authHeaders() });
  } catch (err) {
    throw new Error(`Cannot reach the voxwire server at ${location.origin} (${err.message}).`);
  }
  if (response.status !== 201) {
    throw new Error(`The server refused the call (${response.status}): ${await errorMessage(response)}`);
  }
  call.location = response.headers.get("Location");
  await pc.setRemoteDescription({ type: "answer", sdp: await response.text() });
}

// -- WebSocket ------------------------------------------------------------------------

async function captureContext(stream) {
  // 24 kHz is OpenAI's rate; the browser resamples the microphone to it.
  for (const options of [{ sampleRate: 24000 }, {}]) {
    let ctx;
    try {
      ctx = new AudioContext(options);
      const source = ctx.createMediaStreamSource(stream);
      if (![24000, 48000, 44100, 16000].includes(ctx.sampleRate)) throw new Error("rate");
      return { ctx, source };
    } catch (err) {
      if (ctx) ctx.close();
    }
  }
  throw new Error("The browser cannot capture audio at a rate voxwire takes.");
}

async function pcmNode(ctx, source, onFrame) {
  const frameSamples = (ctx.sampleRate * FRAME_MS) / 1000;
  if (ctx.audioWorklet) {
    await ctx.audioWorklet.addModule("pcm-worklet.js");
    const node = new AudioWorkletNode(ctx, "pcm-capture", { processorOptions: { frameSamples } });
    node.port.onmessage = (e) => onFrame(e.data);
    return node;
  }
  const node = ctx.createScriptProcessor(1024, 1, 1); // older browsers
  node.onaudioprocess = (e) => {
    const input = e.inputBuffer.getChannelData(0);
    const pcm = new Int16Array(input.length);
    for (let i = 0; i < input.length; i++) {
      const s = Math.max(-1, Math.min(1, input[i]));
      pcm[i] = s < 0 ? s * 0x8000 : s * 0x7fff;
    }
    onFrame(pcm.buffer);
  };
  return node;
}

async function startWebSocket(stream) {
  const url = new URL(WS_PATH, location.href);
  url.protocol = location.protocol === "https:" ? "wss:" : "ws:";
  const protocols = ["realtime"];
  const key = ui.apiKey.value.trim();
  if (key) protocols.push("openai-insecure-api-key." + key);
  const { ctx, source } = await captureContext(stream);
  call.capture = ctx;
  call.player = new AudioContext();
  call.playing = new Set();
  call.playAt = 0;
  const ws = new WebSocket(url, protocols);
  ws.binaryType = "arraybuffer";
  call.ws = ws;
  let opened = false;
  const ready = new Promise((resolve, reject) => {
    call.onSession = (event) => {
      if (event.type === "session.updated") resolve();
    };
    ws.onopen = () => {
      opened = true;
      ws.send(JSON.stringify({ type: "session.update", session: sessionOptions(ctx.sampleRate) }));
    };
    ws.onerror = () => {
      if (!opened) reject(new Error(`Cannot reach the voxwire server at ${url.origin}.`));
    };
    ws.onclose = (e) => {
      const why = e.code === 1013 ? "the server is at its session limit; try again later"
        : e.reason || `code ${e.code}`;
      if (!opened) reject(new Error(`The server closed the connection: ${why}.`));
      else if (call?.ws === ws) fail(`The server closed the connection: ${why}.`);
    };
  });
  ws.onmessage = (e) => {
    if (typeof e.data === "string") onServerEvent(JSON.parse(e.data));
  };
  await ready;
  call.dropped = 0;
  const node = await pcmNode(ctx, source, (buffer) => {
    if (ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > MAX_WS_BUFFERED) call.dropped++;
    else ws.send(buffer);
  });
  const mute = ctx.createGain();
  mute.gain.value = 0;
  source.connect(node);
  node.connect(mute).connect(ctx.destination); // keeps the node pulled, plays nothing
  setStatus(call.liveText, "live");
}

// -- start and stop -------------------------------------------------------------------

async function start() {
  clearError();
  const mode = chosenMode();
  ui.start.disabled = true;
  ui.stop.disabled = false;
  call = { mode, outputRate: 24000, liveText: `live (${mode === "webrtc" ? "WebRTC" : "WebSocket"})` };
  setStatus("opening the microphone…", "connecting");
  try {
    call.stream = await openMicrophone();
    call.stopMeter = startMeter(call.stream);
    setStatus("connecting…", "connecting");
    if (mode === "webrtc") await startWebRTC(call.stream);
    else await startWebSocket(call.stream);
  } catch (err) {
    fail(err.message || String(err));
  }
}

function fail(message) {
  stop();
  showError(message);
}

function stop() {
  const current = call;
  call = null;
  ui.start.disabled = false;
  ui.stop.disabled = true;
  setStatus("stopped", "idle");
  if (!current) return;
  if (current.channel) current.channel.close();
  if (current.pc) current.pc.close();
  if (current.ws && current.ws.readyState <= WebSocket.OPEN) current.ws.close(1000, "stopped");
  if (current.playing) for (const source of current.playing) source.stop();
  for (const ctx of [current.capture, current.player]) if (ctx) ctx.close();
  if (current.stopMeter) current.stopMeter();
  if (current.stream) for (const track of current.stream.getTracks()) track.stop();
  ui.remote.srcObject = null;
}

ui.start.addEventListener("click", start);
$("controls").addEventListener("submit", (e) => e.preventDefault());
ui.stop.addEventListener("click", () => {
  clearError();
  stop();
});
