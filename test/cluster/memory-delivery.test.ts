import { deliverySemantics } from './delivery-semantics.js';
import { startMemoryCluster } from './fixture.js';

// The same semantics with three TidingsNode instances in this process on shared in-memory
// backends: both buses and both publish lookups must behave alike. The Redis run stays the
// test of cluster behaviour; this one pins the memory side to it.
deliverySemantics('three in-process nodes on shared in-memory backends', (props) => startMemoryCluster(props));
