/**
 * Model cards by the names workflows store (`GET /api/lm/{prefix}/lookup?name=..`), for the
 * list widget, the trigger-word chips and the picker previews: answers are cached per name and
 * the names asked for in one tick go out as one request. It owns no DOM; `client` is our API
 * client (web/app/api/client.js, created with ComfyUI's fetch and base path by the caller).
 */

const MAX_NAMES = 200; // workflow_handlers.MAX_NAMES

/** deps: {client}. Returns {cards(prefix, names) → Promise<Map name → card|null>, cached(prefix,
 * name) → card|null|undefined, clear()}. */
export function createLookup({ client }) {
  const cache = new Map(); // `${prefix}\n${name}` → Promise<card|null>
  const settled = new Map(); // same key → card|null, once answered
  let pending = new Map(); // prefix → Map(name → {resolve})
  let scheduled = false;

  async function flush() {
    scheduled = false;
    const batch = pending;
    pending = new Map();
    for (const [prefix, waiting] of batch) {
      const names = [...waiting.keys()];
      for (let i = 0; i < names.length; i += MAX_NAMES) {
        const chunk = names.slice(i, i + MAX_NAMES);
        let models = {};
        try {
          const answer = await client.get(`/${prefix}/lookup`, { name: chunk });
          models = answer.models || {};
        } catch (err) {
          console.warn('[model library] lookup failed', err);
          // not cached: the next hover or edit asks again
          for (const name of chunk) cache.delete(`${prefix}\n${name}`);
        }
        for (const name of chunk) {
          const card = models[name] ?? null;
          if (name in models) settled.set(`${prefix}\n${name}`, card);
          waiting.get(name)(card);
        }
      }
    }
  }

  function one(prefix, name) {
    const key = `${prefix}\n${name}`;
    if (!cache.has(key)) {
      cache.set(key, new Promise((resolve) => {
        if (!pending.has(prefix)) pending.set(prefix, new Map());
        pending.get(prefix).set(name, resolve);
      }));
      if (!scheduled) { scheduled = true; queueMicrotask(flush); }
    }
    return cache.get(key);
  }

  async function cards(prefix, names) {
    const unique = [...new Set(names.filter(Boolean))];
    const found = await Promise.all(unique.map((name) => one(prefix, name)));
    return new Map(unique.map((name, i) => [name, found[i]]));
  }

  return {
    cards,
    cached: (prefix, name) => settled.get(`${prefix}\n${name}`),
    /** Forget every answer (the library changed). */
    clear() { cache.clear(); settled.clear(); },
  };
}
