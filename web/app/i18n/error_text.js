/**
 * The user-facing text of a failed call: the server's own message, or a translated note when
 * the route does not exist on this server (a feature not installed or not built yet).
 */
export function errorText(err, t) {
  if (err && err.isMissingRoute) return t('errors.not_available');
  if (err && err.code === 'network') return t('errors.network');
  return err && err.message ? err.message : String(err);
}
