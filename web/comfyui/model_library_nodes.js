/**
 * ComfyUI entry of the library's nodes (LoRA Loader / Stacker, Trigger Words): registers the
 * extension that gives them their widgets, previews ComfyUI's own model pickers and listens for
 * models sent from the full page. Only registration lives here; the work is in
 * web/app/comfyui/nodes/ (served at /lm/static/comfyui/nodes/, see model_library.js).
 */
import { app } from '../../scripts/app.js';
import { api } from '../../scripts/api.js';
import { createNodesExtension } from '../../lm/static/comfyui/nodes/extension.js';
import { addLoraToListNode, isLoraListNode } from '../../lm/static/comfyui/nodes/list_nodes.js';
// the sidebar entry's graph actions: a model the page sends makes the node the sidebar's Add makes
import { addModelNode, insertPromptText } from './model_library.js';

const nodes = createNodesExtension({ app, api, addModelNode, insertPromptText });

export { isLoraListNode, addLoraToListNode };

app.registerExtension(nodes.definition);
