/**
 * Normalises the server's folder trees (`{name: {children}}` or nested `{name: {...}}`, or a
 * flat list of relative folders) into sorted nodes {name, path, children}. Pure.
 */

function childrenOf(value) {
  if (!value || typeof value !== 'object') return {};
  if (value.children && typeof value.children === 'object') return value.children;
  return value;
}

export function treeFromObject(tree, prefix = '') {
  const nodes = [];
  for (const [name, value] of Object.entries(tree || {})) {
    if (!name || name === 'children') continue;
    const path = prefix ? `${prefix}/${name}` : name;
    nodes.push({ name, path, children: treeFromObject(childrenOf(value), path) });
  }
  nodes.sort((a, b) => a.name.localeCompare(b.name, undefined, { sensitivity: 'base', numeric: true }));
  return nodes;
}

export function treeFromPaths(paths) {
  const tree = {};
  for (const raw of paths || []) {
    const parts = String(raw).replace(/\\/g, '/').split('/').filter(Boolean);
    let node = tree;
    for (const part of parts) { node[part] = node[part] || {}; node = node[part]; }
  }
  return treeFromObject(tree);
}

/** Accept whatever shape arrived: array of paths, or an object tree. */
export function normaliseTree(data) {
  return Array.isArray(data) ? treeFromPaths(data) : treeFromObject(data);
}

/** Every ancestor path of `path` ('a/b/c' → ['a', 'a/b']). */
export function ancestorsOf(path) {
  const parts = String(path || '').split('/').filter(Boolean);
  return parts.slice(0, -1).map((_, i) => parts.slice(0, i + 1).join('/'));
}
