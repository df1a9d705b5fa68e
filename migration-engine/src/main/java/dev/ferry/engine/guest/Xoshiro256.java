package dev.ferry.engine.guest;

/**
 * xoshiro256** — a small, fast generator whose whole state is four longs, so a vCPU's position in
 * its workload can be saved, sent and restored exactly.
 */
public final class Xoshiro256 {
  private long s0;
  private long s1;
  private long s2;
  private long s3;

  public Xoshiro256(long seed) {
    long x = seed;
    s0 = splitMix(x += 0x9E3779B97F4A7C15L);
    s1 = splitMix(x += 0x9E3779B97F4A7C15L);
    s2 = splitMix(x += 0x9E3779B97F4A7C15L);
    s3 = splitMix(x + 0x9E3779B97F4A7C15L);
  }

  public Xoshiro256(long s0, long s1, long s2, long s3) {
    if ((s0 | s1 | s2 | s3) == 0) {
      throw new IllegalArgumentException("xoshiro256 state must not be all zero");
    }
    this.s0 = s0;
    this.s1 = s1;
    this.s2 = s2;
    this.s3 = s3;
  }

  private static long splitMix(long z) {
    z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
    z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
    return z ^ (z >>> 31);
  }

  public long nextLong() {
    long result = Long.rotateLeft(s1 * 5, 7) * 9;
    long t = s1 << 17;
    s2 ^= s0;
    s3 ^= s1;
    s1 ^= s2;
    s0 ^= s3;
    s2 ^= t;
    s3 = Long.rotateLeft(s3, 45);
    return result;
  }

  /** Uniform in [0, bound) for bound > 0. */
  public int nextInt(int bound) {
    return (int) (((nextLong() >>> 32) * bound) >>> 32);
  }

  public long[] state() {
    return new long[] {s0, s1, s2, s3};
  }

  public Xoshiro256 copy() {
    return new Xoshiro256(s0, s1, s2, s3);
  }
}
