/**
 * NSFW levels (CivitAI's bit values) and the blur decision from the user's settings.
 * Pure: settings in, boolean out.
 */

export const NSFW_LEVELS = Object.freeze({ PG: 1, PG13: 2, R: 4, X: 8, XXX: 16 });
export const NSFW_LEVEL_NAMES = Object.freeze(Object.keys(NSFW_LEVELS));

/** Blur when blurring is on and the preview's level is at or above the threshold. */
export function shouldBlur(level, settings) {
  if (!settings || settings.blur_mature_content === false) return false;
  const threshold = NSFW_LEVELS[settings.mature_blur_level] ?? NSFW_LEVELS.R;
  return Number(level || 0) >= threshold;
}
