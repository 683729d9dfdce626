/**
 * The chips of the Trigger Words node: one per word or comma group, a click switches it off
 * and on. Owns its element only; the words come in through `setWords`, the switched-off ones
 * through `setDisabled`, and a click reports the new list through `onToggle(disabled)`.
 */
import { chipsOf, toggleChip } from './trigger_words_model.js';

export const CHIP_ROW_HEIGHT = 26;

/** deps: {tr(key), onToggle(disabled)}. Returns {element, setWords(words, source), setDisabled(list), minHeight()}. */
export function createTriggerChips({ tr, onToggle }) {
  let words = [];
  let disabled = [];
  let source = 'none';
  const element = document.createElement('div');
  element.className = 'lm-node-chips';
  element.dataset.lmChips = '1';

  function render() {
    const chips = chipsOf(words, disabled);
    element.dataset.source = source;
    if (!chips.length) {
      const hint = document.createElement('div');
      hint.className = 'lm-node-chips-empty';
      hint.textContent = tr(source === 'loras' ? 'noTriggerWords' : 'chipsHint');
      element.replaceChildren(hint);
      return;
    }
    element.replaceChildren(...chips.map((chip) => {
      const button = document.createElement('button');
      button.type = 'button';
      button.className = `lm-node-chip${chip.on ? '' : ' lm-node-chip--off'}`;
      button.textContent = chip.text;
      button.title = tr(chip.on ? 'chipOn' : 'chipOff');
      button.setAttribute('aria-pressed', chip.on ? 'true' : 'false');
      button.dataset.word = chip.text;
      return button;
    }));
  }

  element.addEventListener('click', (event) => {
    const chip = event.target.closest('.lm-node-chip');
    if (!chip) return;
    disabled = toggleChip(disabled, chip.dataset.word);
    render();
    onToggle(disabled);
  });

  render();
  return {
    element,
    /** The words or groups shown; `from` says where they came from ('loras', 'run', 'none'). */
    setWords(next, from = 'run') { words = next.slice(); source = from; render(); },
    setDisabled(next) { disabled = next.slice(); render(); },
    words: () => words,
    minHeight: () => {
      // a rough wrap estimate: the node grows with the number of chips
      const rows = Math.max(1, Math.ceil(chipsOf(words, disabled).reduce((n, c) => n + c.text.length + 4, 0) / 36));
      return 12 + rows * CHIP_ROW_HEIGHT;
    },
  };
}
