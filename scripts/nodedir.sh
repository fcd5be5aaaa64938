# Sourced (sh or bash): node-gyp builds against this Node's own headers. npm's nodedir when one is set, else
# the prefix of the node on PATH when it ships its headers; without either, node-gyp downloads them from
# nodejs.org, which a machine with only the npm registry in reach cannot (an ordinary user has no ~/.npmrc).
if [ -z "${npm_config_nodedir:-}" ]; then
  _libipc_nodedir="$(npm config get nodedir 2>/dev/null || true)"
  case "$_libipc_nodedir" in
    "" | undefined | null) _libipc_nodedir="$(dirname "$(dirname "$(command -v node)")")" ;;
  esac
  if [ -f "$_libipc_nodedir/include/node/node_api.h" ]; then export npm_config_nodedir="$_libipc_nodedir"; fi
  unset _libipc_nodedir
fi
