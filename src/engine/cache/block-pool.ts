/**
 * KV block bookkeeping: ids, reference counts and a free list. Metadata only; the K/V
 * bytes live in the cache's pools, addressed by block id.
 *
 * Invariants:
 * - block 0 is the null block: never allocated, never freed; block tables pad with it;
 * - a block is free iff its refcount is 0; refcounts never go negative.
 */
export class BlockPool {
  private readonly refs: Int32Array;
  private readonly freeList: number[] = [];
  private top = 0;

  constructor(readonly nBlocks: number) {
    if (nBlocks < 2) throw new Error("block pool needs at least 2 blocks");
    this.refs = new Int32Array(nBlocks);
    for (let b = nBlocks - 1; b >= 1; b--) this.freeList.push(b);
  }

  /** Takes a free block (refcount 1), or throws when none is left. */
  allocate(): number {
    const b = this.freeList.pop();
    if (b === undefined)
      throw new Error("KV cache is full (no free blocks): raise num_ctx or shorten the prompt");
    this.refs[b] = 1;
    if (b > this.top) this.top = b;
    return b;
  }

  /** The highest block id ever allocated (0: none yet). Blocks go out lowest id first. */
  highWater(): number {
    return this.top;
  }

  /** Adds a reference (a second sequence sharing a full block). */
  retain(b: number): void {
    if (b <= 0 || this.refs[b] === 0) throw new Error(`retain of free block ${b}`);
    this.refs[b]!++;
  }

  /** Drops a reference; the block becomes free at 0. */
  release(b: number): void {
    if (b <= 0 || this.refs[b]! <= 0) throw new Error(`release of free block ${b}`);
    if (--this.refs[b]! === 0) this.freeList.push(b);
  }

  freeBlocks(): number {
    return this.freeList.length;
  }

  usage(): number {
    return 1 - this.freeList.length / (this.nBlocks - 1);
  }
}
