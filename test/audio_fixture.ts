/**
 * Hand-built WAV bytes for the audio tests: a canonical 16-bit PCM file, and a copy with a header field
 * changed (to make malformed requests).
 */

/** A canonical 44-byte-header 16-bit PCM WAV of mono `samples` in [-1, 1], copied to `channels`. */
export function pcm16Wav(samples: Float32Array, rate: number, channels = 1): Uint8Array {
  const dataBytes = samples.length * 2 * channels;
  const out = new Uint8Array(44 + dataBytes);
  const view = new DataView(out.buffer);
  const text = (at: number, s: string) => [...s].forEach((c, i) => view.setUint8(at + i, c.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + dataBytes, true);
  text(8, "WAVEfmt ");
  view.setUint32(16, 16, true);
  view.setUint16(20, 1, true);
  view.setUint16(22, channels, true);
  view.setUint32(24, rate, true);
  view.setUint32(28, rate * 2 * channels, true);
  view.setUint16(32, 2 * channels, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, dataBytes, true);
  for (let i = 0; i < samples.length; i++) {
    for (let c = 0; c < channels; c++) {
      view.setInt16(44 + (i * channels + c) * 2, Math.round(samples[i] * 32767), true);
    }
  }
  return out;
}

/**
 * A copy of a canonical WAV (44-byte header, as FSDD files and {@link pcm16Wav} have) with a little-endian
 * header field replaced.
 */
export function patched(bytes: Uint8Array, offset: number, value: number, size: 2 | 4): Uint8Array {
  const copy = bytes.slice();
  const view = new DataView(copy.buffer);
  if (size === 2) view.setUint16(offset, value, true);
  else view.setUint32(offset, value, true);
  return copy;
}
