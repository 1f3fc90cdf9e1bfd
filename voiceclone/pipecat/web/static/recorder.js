// Records the microphone as a 16-bit mono WAV. WAV because the server can check and decode it with the same
// reader as any recording (libsndfile); MediaRecorder would give WebM/Opus, which that reader cannot open.
// The browser's voice processing is off: a clone should learn the voice, not the noise suppressor.

const RAW_AUDIO = { echoCancellation: false, noiseSuppression: false, autoGainControl: false, channelCount: 1 };

/**
 * Record for `seconds` (or until `stop()`), calling `onProgress(elapsedSeconds, peakLevel)` as it goes.
 * Returns {stop, done}: `done` resolves with the WAV Blob.
 */
export async function record(seconds, onProgress) {
  const stream = await navigator.mediaDevices.getUserMedia({ audio: RAW_AUDIO });
  const context = new AudioContext();
  await context.audioWorklet.addModule("/static/recorder-worklet.js");
  const source = context.createMediaStreamSource(stream);
  const node = new AudioWorkletNode(context, "pcm-recorder");
  const mute = context.createGain();
  mute.gain.value = 0; // the node must reach the destination to be run, but nothing should be heard
  source.connect(node).connect(mute).connect(context.destination);

  const blocks = [];
  let samples = 0;
  let finish;
  const done = new Promise((resolve) => (finish = resolve));
  const stop = () => {
    if (!finish) return;
    const resolve = finish;
    finish = null;
    stream.getTracks().forEach((track) => track.stop());
    node.port.onmessage = null;
    context.close();
    resolve(wav(blocks, samples, context.sampleRate));
  };
  node.port.onmessage = (event) => {
    const block = event.data;
    blocks.push(block);
    samples += block.length;
    let peak = 0;
    for (const value of block) peak = Math.max(peak, Math.abs(value));
    onProgress(samples / context.sampleRate, peak);
    if (samples >= seconds * context.sampleRate) stop();
  };
  return { stop, done };
}

/** 16-bit PCM WAV (RIFF) of the blocks. */
function wav(blocks, samples, rate) {
  const buffer = new ArrayBuffer(44 + samples * 2);
  const view = new DataView(buffer);
  const text = (offset, s) => [...s].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + samples * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true); // fmt chunk size
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2, true); // bytes per second
  view.setUint16(32, 2, true); // bytes per frame
  view.setUint16(34, 16, true); // bits per sample
  text(36, "data");
  view.setUint32(40, samples * 2, true);
  let offset = 44;
  for (const block of blocks) {
    for (const value of block) {
      const clipped = Math.max(-1, Math.min(1, value));
      view.setInt16(offset, clipped < 0 ? clipped * 32768 : clipped * 32767, true);
      offset += 2;
    }
  }
  return new Blob([buffer], { type: "audio/wav" });
}
