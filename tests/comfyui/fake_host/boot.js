// Boots the fake host the way ComfyUI's frontend does: shims first, then every extension
// module listed by /api/extensions, then init() and setup() of each registered extension.
import { createFakeComfy } from '/fake/fake_comfy.js';

const params = new URLSearchParams(location.search);
const comfy = createFakeComfy({ locale: params.get('locale') || 'en', frontend: params.get('frontend') || '1.58.1' });
window.comfyAPI = { app: { app: comfy.app }, api: { api: comfy.api } };
window.LiteGraph = comfy.LiteGraph;
window.fake = comfy;
try {
  const urls = await (await fetch('/api/extensions')).json();
  for (const url of urls) await import(url);
  await comfy.runSetup();
  window.fakeReady = true;
} catch (err) {
  window.fakeError = String(err && err.stack || err);
  throw err;
}
