/**
 * Preloaded into every server node the messaging benchmark starts (`node --expose-gc --import
 * …/gc-on-signal.js`): SIGUSR2 runs a full garbage collection. The memory figure reads RSS after
 * one in each system alike, so garbage a node left from its start-up (tidings parses the whole
 * user directory) is not counted as memory of the connections. Nothing else changes in the node.
 */
const gc = (globalThis as { gc?: () => void }).gc;
if (gc) process.on('SIGUSR2', () => gc());
