// Test harness only: works around known defects of @heroku/mcp-server 1.2.x (see
// ../../../docs/compat.md): an ESM import without ".js", and calls to api.heroku.com
// that ignore HEROKU_HOST. Spruce itself needs no workaround.
export async function resolve(specifier, context, nextResolve) {
  try {
    return await nextResolve(specifier, context);
  } catch (err) {
    if (!specifier.endsWith('.js') && (err.code === 'ERR_MODULE_NOT_FOUND' || err.code === 'ERR_UNSUPPORTED_DIR_IMPORT')) {
      return nextResolve(specifier + '.js', context);
    }
    throw err;
  }
}
export async function load(url, context, nextLoad) {
  const result = await nextLoad(url, context);
  if (url.includes('/@heroku/mcp-server/') && result.source && process.env.HEROKU_HOST) {
    const text = result.source.toString();
    if (text.includes('https://api.heroku.com')) {
      return { ...result, source: text.split('https://api.heroku.com').join(process.env.HEROKU_HOST) };
    }
  }
  return result;
}
