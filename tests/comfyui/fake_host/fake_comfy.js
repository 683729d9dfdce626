// A fake of the documented ComfyUI frontend extension API (see shared/comfyui/README.md §4):
// app.registerExtension, extensionManager (sidebar tabs, toasts, settings, commands, the
// workflow's change tracker), a LiteGraph-like graph/canvas with the 1.5x selection and link
// API (selectedItems, select, getInputLink; none of the deprecated selected_nodes,
// output.links, input.link) and the api object. It records what extensions do with it.

const NODE_DEFS = {
  CheckpointLoaderSimple: { title: 'Load Checkpoint', inputs: [], outputs: [['MODEL', 'MODEL'], ['CLIP', 'CLIP'], ['VAE', 'VAE']], widgets: [['ckpt_name', 'combo', 'checkpoints']] },
  UNETLoader: { title: 'Load Diffusion Model', inputs: [], outputs: [['MODEL', 'MODEL']], widgets: [['unet_name', 'combo', 'diffusion_models'], ['weight_dtype', 'combo', 'dtypes']] },
  LoraLoader: { title: 'Load LoRA', inputs: [['model', 'MODEL'], ['clip', 'CLIP']], outputs: [['MODEL', 'MODEL'], ['CLIP', 'CLIP']], widgets: [['lora_name', 'combo', 'loras'], ['strength_model', 'number'], ['strength_clip', 'number']] },
  LoraLoaderModelOnly: { title: 'LoraLoaderModelOnly', inputs: [['model', 'MODEL']], outputs: [['MODEL', 'MODEL']], widgets: [['lora_name', 'combo', 'loras'], ['strength_model', 'number']] },
  KSampler: { title: 'KSampler', inputs: [['model', 'MODEL'], ['positive', 'CONDITIONING'], ['negative', 'CONDITIONING'], ['latent_image', 'LATENT']], outputs: [['LATENT', 'LATENT']], widgets: [['seed', 'number']] },
  CLIPTextEncode: { title: 'CLIP Text Encode (Prompt)', inputs: [['clip', 'CLIP']], outputs: [['CONDITIONING', 'CONDITIONING']], widgets: [['text', 'text']] },
};

export function createFakeComfy({ locale = 'en', frontend = '1.58.1' } = {}) {
  const choices = { loras: [], checkpoints: [], diffusion_models: [], dtypes: ['default', 'fp8_e4m3fn'] };
  const calls = [];
  const socketCalls = []; // listeners added to the api, and asks for our events, in order
  const toasts = [];
  const tabs = [];
  const extensions = [];
  const settingDefs = new Map();
  const settingValues = new Map([['Comfy.Locale', locale]]);
  const commands = new Map();
  const opened = [];

  class FakeNode {
    constructor(type) {
      const def = NODE_DEFS[type];
      this.type = type;
      this.title = def.title;
      this.id = -1;
      this.pos = [0, 0];
      this.size = [300, 120];
      // slots keep their links under other names: extensions must go through getInputLink()
      this.inputs = def.inputs.map(([name, t]) => ({ name, type: t, _link: null }));
      this.outputs = def.outputs.map(([name, t]) => ({ name, type: t, _links: [] }));
      this.widgets = def.widgets.map(([name, kind, list]) => {
        if (kind === 'text') {
          const element = document.createElement('textarea');
          element.className = 'comfy-multiline-input';
          element.dataset.node = type;
          document.getElementById('widgets').append(element);
          return { name, type: 'customtext', element, get value() { return element.value; }, set value(v) { element.value = v; } };
        }
        if (kind === 'combo') return { name, type: 'combo', value: choices[list][0] ?? '', options: { values: choices[list] } };
        return { name, type: 'number', value: 1, options: {} };
      });
    }

    connect(slot, target, targetSlot) {
      calls.push(['connect', this.type, slot, target.type, targetSlot]);
      const g = fake.graph;
      const input = target.inputs[targetSlot];
      if (input._link !== null) {
        const old = g.links.get(input._link);
        const origin = g.getNodeById(old.origin_id);
        origin.outputs[old.origin_slot]._links = origin.outputs[old.origin_slot]._links.filter((id) => id !== old.id);
        g.links.delete(old.id);
      }
      const id = ++g.lastLinkId;
      g.links.set(id, { id, origin_id: this.id, origin_slot: slot, target_id: target.id, target_slot: targetSlot, type: this.outputs[slot].type });
      this.outputs[slot]._links.push(id);
      input._link = id;
      return g.links.get(id);
    }

    getInputLink(slot) {
      const id = this.inputs[slot]?._link;
      return id === null || id === undefined ? null : fake.graph.links.get(id) || null;
    }
  }

  const graph = {
    nodes: [],
    links: new Map(),
    lastNodeId: 0,
    lastLinkId: 0,
    add(node) { node.id = ++this.lastNodeId; this.nodes.push(node); calls.push(['add', node.type]); return node; },
    getNodeById(id) { return this.nodes.find((n) => n.id === id) || null; },
    getLink(id) { return this.links.get(id); },
    getNodeOnPos(x, y) {
      return [...this.nodes].reverse().find((n) => x >= n.pos[0] && x <= n.pos[0] + n.size[0] && y >= n.pos[1] && y <= n.pos[1] + n.size[1]) || null;
    },
    beforeChange() { calls.push(['beforeChange']); },
    afterChange() { calls.push(['afterChange']); },
    setDirtyCanvas() {},
  };

  const canvasEl = document.getElementById('graph-canvas');
  const canvas = {
    canvas: canvasEl,
    graph,
    selectedItems: new Set(),
    ds: { scale: 1, offset: [0, 0] },
    select(item) { this.selectedItems.add(item); },
    deselect(item) { this.selectedItems.delete(item); },
    deselectAll() { this.selectedItems.clear(); },
    selectItems(items) { this.selectedItems = new Set(items); },
    // graph = screen / scale - offset, as LiteGraph's DragAndScale
    convertEventToCanvasOffset(e) {
      const r = canvasEl.getBoundingClientRect();
      return [(e.clientX - r.left) / this.ds.scale - this.ds.offset[0], (e.clientY - r.top) / this.ds.scale - this.ds.offset[1]];
    },
    setDirty() {},
  };

  const LiteGraph = {
    createNode(type) { calls.push(['createNode', type]); return NODE_DEFS[type] ? new FakeNode(type) : null; },
  };

  class FakeApi extends EventTarget {
    constructor() { super(); this.api_base = ''; this.clientId = 'fake-client'; }
    apiURL(route) { return `${this.api_base}/api${route}`; }
    fileURL(route) { return `${this.api_base}${route}`; }
    addEventListener(type, fn, options) { socketCalls.push(['addEventListener', type]); super.addEventListener(type, fn, options); }
    fetchApi(route, init = {}) {
      // ComfyUI's own server answers this one (py/host/comfyui.py), the standalone server cannot
      if (route === '/lm/events/listen') {
        socketCalls.push(['listen', JSON.parse(init.body).client_id]);
        return Promise.resolve(new Response(JSON.stringify({ success: true, listening: true })));
      }
      calls.push(['fetchApi', route]);
      return fetch(this.apiURL(route), init);
    }
  }
  const api = new FakeApi();

  const sidebarTab = {
    registerSidebarTab(tab) {
      tabs.push({ ...tab, via: 'sidebarTab' });
      commands.set(`Workspace.ToggleSidebarTab.${tab.id}`, { function: () => (fake.openedTab === tab.id ? fake.closeTab(tab.id) : fake.openTab(tab.id)) });
    },
  };
  const changeTracker = { captured: 0, captureCanvasState() { this.captured += 1; } };
  const extensionManager = {
    registerSidebarTab(tab) { tabs.push({ ...tab, via: 'deprecated' }); },
    sidebarTab,
    toast: {
      add(message) { toasts.push({ ...message }); },
      remove(message) { const i = toasts.findIndex((t) => t.detail === message.detail); if (i >= 0) toasts[i].removed = true; },
      addAlert(text) { toasts.push({ severity: 'warn', detail: text }); },
    },
    setting: {
      get(id) { return settingValues.has(id) ? settingValues.get(id) : settingDefs.get(id)?.defaultValue; },
      set(id, value) { const old = this.get(id); settingValues.set(id, value); settingDefs.get(id)?.onChange?.(value, old); },
    },
    command: { execute(id) { return commands.get(id)?.function(); } },
    workflow: { activeWorkflow: { changeTracker } },
  };

  const app = {
    rootGraph: graph, canvas, extensionManager,
    registerExtension(ext) {
      if (extensions.some((e) => e.name === ext.name)) throw new Error(`Extension named ${ext.name} already registered`);
      extensions.push(ext);
      for (const s of ext.settings || []) settingDefs.set(s.id, s);
      for (const c of ext.commands || []) commands.set(c.id, c);
    },
  };

  const fake = {
    app, api, graph, canvas, LiteGraph, calls, socketCalls, toasts, tabs, extensions, choices, settingDefs, opened, changeTracker,
    openedTab: null,
    async runSetup() {
      for (const ext of extensions) await ext.init?.(app);
      for (const ext of extensions) await ext.setup?.(app);
    },
    openTab(id) {
      const tab = tabs.find((t) => t.id === id);
      const host = document.getElementById('sidebar-tab');
      const fresh = document.createElement('div');
      host.replaceChildren(fresh);
      tab.render(fresh);
      fake.openedTab = id;
      return true;
    },
    closeTab(id) {
      tabs.find((t) => t.id === id)?.destroy?.();
      document.getElementById('sidebar-tab').replaceChildren();
      fake.openedTab = null;
    },
    addNode(type, pos = [40, 40]) { const n = LiteGraph.createNode(type); n.pos = pos; graph.add(n); calls.length = 0; return n; },
    /** Nodes as plain data (type, widget values, inputs' origins) for assertions. */
    snapshot() {
      return graph.nodes.map((n) => ({
        id: n.id, type: n.type, pos: [...n.pos],
        widgets: Object.fromEntries(n.widgets.map((w) => [w.name, w.value])),
        inputs: Object.fromEntries(n.inputs.map((i) => {
          const link = i._link === null ? null : graph.links.get(i._link);
          return [i.name, link ? [graph.getNodeById(link.origin_id).type, link.origin_slot] : null];
        })),
      }));
    },
  };
  window.open = (url, target, features) => { opened.push({ url, target, features }); return null; };
  window.__COMFYUI_FRONTEND_VERSION__ = frontend;
  // like ComfyUI's keybinding service: a window listener that runs single-key commands and
  // prevents the default of Escape (bound to Comfy.Graph.ExitSubgraph in 1.27)
  fake.keysSeen = [];
  window.addEventListener('keydown', (event) => {
    fake.keysSeen.push(event.key);
    if (event.key === 'Escape') event.preventDefault();
  });
  return fake;
}
