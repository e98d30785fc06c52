// SPDX-License-Identifier: MIT
import type { Context } from '@opentelemetry/api';
import type { ReadableSpan, Span, SpanProcessor } from '@opentelemetry/sdk-trace-base';

export interface SidespanSpanProcessorOptions {
  /** The daemon's socket: default $SIDESPAN_SOCKET, else /run/sidespan/sidespan.sock when it
   *  exists, else $XDG_RUNTIME_DIR/sidespan.sock, as libsidespan does. */
  socketPath?: string;
  /** service.name of this client: default the resource's, else "upsonic". */
  serviceName?: string;
  /** Encoded bytes held while the daemon is away (default 4 MiB); past it spans are dropped. */
  maxQueueBytes?: number;
  /** More resource attributes, sent once per connection. */
  resourceAttributes?: Record<string, unknown>;
}

export interface SidespanStats {
  spans: number;
  framesQueued: number;
  framesSent: number;
  bytesSent: number;
  dropped: number;
  droppedTooLarge: number;
  attrsDropped: number;
  reconnects: number;
  connectFailures: number;
  queuedBytes: number;
  connected: boolean;
}

/** The largest frame the daemon accepts by default, in bytes. */
export declare const MAX_FRAME: number;

export declare class SidespanSpanProcessor implements SpanProcessor {
  constructor(options?: SidespanSpanProcessorOptions);
  onStart(span: Span, parentContext: Context): void;
  onEnd(span: ReadableSpan): void;
  /** Resolves once the daemon has every span ended so far, or after timeoutMs; never rejects. */
  forceFlush(timeoutMs?: number): Promise<void>;
  shutdown(): Promise<void>;
  stats(): SidespanStats;
}

export default SidespanSpanProcessor;
