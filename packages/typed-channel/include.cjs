// Like node-addon-api's include_dir: the path of the channel's public C++ headers (libipc/channel.h, the ring and
// its layout), for g++ -I or a binding.gyp's include_dirs. They also need @libipc/shm's (require('@libipc/shm/include')).
const path = require('node:path');

exports.include_dir = path.relative('.', path.join(__dirname, 'include'));
exports.include = `"${path.join(__dirname, 'include')}"`;
