// Where a demo instance lives: its registry domain, its instance name and its four channels.

/** The registry domain and the prefix of every channel name (tests pass their own to run side by side). */
export const DEFAULT_DOMAIN = 'audio';
export const SERVICE_NAME = 'audio_compute';

/** The service creates its data channels so: one 8 KiB slot holds a buffer of 512 stereo frames (4 KiB + header). */
export const DATA_CHANNEL = { capacity: 64, slotSize: 8192, maxMessageSize: 1024 * 1024 } as const;

export interface ChannelNames {
  /** Host → service: ControlMsg (every instance hears them; only the primary answers). */
  control: string;
  /** Service → host: ReplyMsg. */
  reply: string;
  /** Host → service: audio buffers to process. */
  dataIn: string;
  /** Service → host: processed audio buffers. */
  dataOut: string;
}

/** `audio_ctrl_<id>`, `audio_reply_<id>`, `audio_data_in_<id>`, `audio_data_out_<id>` in the default domain. */
export function channelNames(domain: string, id: number): ChannelNames {
  return {
    control: `${domain}_ctrl_${id}`,
    reply: `${domain}_reply_${id}`,
    dataIn: `${domain}_data_in_${id}`,
    dataOut: `${domain}_data_out_${id}`,
  };
}

/** The data channels travel in the registry entry's meta, so a host finds all four channels there. */
export function encodeMeta(names: ChannelNames): string {
  return JSON.stringify({ dataIn: names.dataIn, dataOut: names.dataOut });
}

export function decodeMeta(meta: string | undefined): { dataIn: string; dataOut: string } | undefined {
  try {
    const m = JSON.parse(meta ?? '') as { dataIn?: unknown; dataOut?: unknown };
    return typeof m.dataIn === 'string' && typeof m.dataOut === 'string' ? { dataIn: m.dataIn, dataOut: m.dataOut } : undefined;
  } catch {
    return undefined;
  }
}
