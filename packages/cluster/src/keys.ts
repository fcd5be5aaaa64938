/**
 * Where a cluster keeps its state in etcd. Everything lives under `libipc/cluster/<cluster>/`:
 *
 * | key | value | lease |
 * | --- | --- | --- |
 * | `b/n/<node>` | node record | the node's |
 * | `b/p/<process>/<node>` | registration | the registering node's |
 * | `b/election/leader/<lease id>` | candidate node name (the oldest leads) | the candidate node's |
 * | `a/<process>` | pending assignment (target node, id) | the target node's |
 * | `i/<node>/s/<process>` | a request for `<node>` to start a daemon | the target node's |
 * | `i/<node>/r/<id>` | the outcome of a request, for the node that asked | the asking node's |
 *
 * The address book watches `b/` (members, registrations, election); each node also watches its own `i/<node>/`.
 * Names never contain '/', so a key splits back into its parts.
 */
export class Keys {
  readonly root: string;
  readonly book: string;
  readonly nodes: string;
  readonly procs: string;
  readonly election: string;
  readonly assignments: string;

  constructor(cluster: string) {
    this.root = `libipc/cluster/${cluster}/`;
    this.book = `${this.root}b/`;
    this.nodes = `${this.book}n/`;
    this.procs = `${this.book}p/`;
    /** Where candidacies live: `${election}election/leader/<lease>` (etcd3's Election's layout, so nodes of both kinds agree). */
    this.election = this.book;
    this.assignments = `${this.root}a/`;
  }

  node(node: string): string {
    return `${this.nodes}${node}`;
  }
  /** All registrations of one name: a prefix. */
  procPrefix(name: string): string {
    return `${this.procs}${name}/`;
  }
  proc(name: string, node: string): string {
    return `${this.procs}${name}/${node}`;
  }
  assignment(name: string): string {
    return `${this.assignments}${name}`;
  }
  inbox(node: string): string {
    return `${this.root}i/${node}/`;
  }
  request(node: string, name: string): string {
    return `${this.inbox(node)}s/${name}`;
  }
  reply(node: string, id: string): string {
    return `${this.inbox(node)}r/${id}`;
  }

  /** What a key under the address book prefix is. */
  parseBook(key: string): { kind: 'node'; node: string } | { kind: 'proc'; name: string; node: string } | { kind: 'election' } | undefined {
    if (!key.startsWith(this.book)) return undefined;
    const rest = key.slice(this.book.length);
    if (rest.startsWith('n/')) return { kind: 'node', node: rest.slice(2) };
    if (rest.startsWith('p/')) {
      const [name, node, extra] = rest.slice(2).split('/');
      if (!name || !node || extra !== undefined) return undefined;
      return { kind: 'proc', name, node };
    }
    if (rest.startsWith('election/')) return { kind: 'election' };
    return undefined;
  }

  /** What a key in a node's inbox is. */
  parseInbox(node: string, key: string): { kind: 'request'; name: string } | { kind: 'reply'; id: string } | undefined {
    const prefix = this.inbox(node);
    if (!key.startsWith(prefix)) return undefined;
    const rest = key.slice(prefix.length);
    if (rest.startsWith('s/')) return { kind: 'request', name: rest.slice(2) };
    if (rest.startsWith('r/')) return { kind: 'reply', id: rest.slice(2) };
    return undefined;
  }
}

/** The end of the range of keys that start with `prefix` (etcd's range_end for a prefix). */
export function prefixEnd(prefix: string): Buffer {
  const end = Buffer.from(prefix);
  for (let i = end.length - 1; i >= 0; i--) {
    if (end[i]! < 0xff) {
      end[i] = end[i]! + 1;
      return end.subarray(0, i + 1);
    }
  }
  return Buffer.from([0]);
}
