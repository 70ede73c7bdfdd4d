/**
 * @module The bytes of a spooled body waiting for the disk, copied into blocks that are reused.
 *
 * Why: Node hands each received piece of a body over as a fresh Buffer (llhttp's on_body copy).
 * Kept until a batch is written, those Buffers outlive V8's young-generation collections, are
 * promoted, and their memory (malloc'd, outside V8's heap) comes back only with a full
 * mark-compact: during a chunked upload the front ran one every few dozen MiB, and V8's GC
 * threads took a quarter of its CPU (README, "Chunked uploads: the spool's blocks"). Copied
 * here at once, the pieces die young. A written block is reused by the same spool (one in full
 * flow has about 2 MiB of blocks: a batch being written, the next one filling); when its writes
 * have caught up, and when it ends, its spare blocks go to a small free list shared by every
 * spool of the front (at most FREE_BLOCKS_MAX: 4 MiB), the rest to the GC. So an upload that
 * stalls holds no block, and the memory of a spool stays what its batches bound.
 */

/** Size of one block; a write batch is several of them (body-spool.ts WRITE_HIGH_WATER_BYTES). */
export const SPOOL_BLOCK_BYTES = 256 * 1024;
/** Free blocks kept for the next spools, across all of them. */
const FREE_BLOCKS_MAX = 16;

const freeBlocks: Buffer[] = [];

/** Blocks in the shared free list now (tests). */
export function freeSpoolBlocks(): number {
  return freeBlocks.length;
}

/** A batch taken for writing: its bytes in order, and `recycle()` once they are on disk. */
export interface BlockBatch {
  pieces: Buffer[];
  /** Lets the spool reuse the blocks; the pieces must not be used afterwards. */
  recycle(): void;
}

/** Bytes pushed and not yet taken, in order, in reused blocks. */
export class SpoolBlocks {
  private full: Buffer[] = [];
  private block: Buffer | null = null;
  private used = 0;
  /** Blocks of this spool already written, for its next bytes. */
  private spare: Buffer[] = [];
  /** Bytes pushed and not yet taken. */
  bytes = 0;

  push(chunk: Buffer): void {
    this.bytes += chunk.length;
    let at = 0;
    while (at < chunk.length) {
      this.block ??= this.spare.pop() ?? freeBlocks.pop() ?? Buffer.allocUnsafeSlow(SPOOL_BLOCK_BYTES);
      const copied = chunk.copy(this.block, this.used, at);
      at += copied;
      this.used += copied;
      if (this.used === this.block.length) {
        this.full.push(this.block);
        this.block = null;
        this.used = 0;
      }
    }
  }

  /** Everything pushed so far (the partly filled block too); afterwards nothing is pending. */
  take(): BlockBatch {
    const blocks = this.full;
    const pieces: Buffer[] = [...blocks];
    if (this.block !== null && this.used > 0) {
      pieces.push(this.block.subarray(0, this.used));
      blocks.push(this.block);
      this.block = null;
      this.used = 0;
    }
    this.full = [];
    this.bytes = 0;
    let isRecycled = false;
    return {
      pieces,
      recycle: () => {
        if (isRecycled) return;
        isRecycled = true;
        this.spare.push(...blocks);
      },
    };
  }

  /** Gives this spool's spare blocks to the shared free list (as many as it takes; the rest to the GC). */
  releaseSpare(): void {
    for (const block of this.spare) if (freeBlocks.length < FREE_BLOCKS_MAX) freeBlocks.push(block);
    this.spare = [];
  }

  /** Drops what is pending (the spool ended) and lets go of every block. */
  discard(): void {
    this.take().recycle();
    this.releaseSpare();
  }
}
