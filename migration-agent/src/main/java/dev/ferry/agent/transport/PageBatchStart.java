package dev.ferry.agent.transport;

/** A page batch frame begins; its {@code bodyBytes} follow as {@link PageBytes}. */
record PageBatchStart(int bodyBytes) {}
