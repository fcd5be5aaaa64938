// A group instance, started by host.mjs as: node service.mjs <id>
import { GroupMember } from '@libipc/group';

const member = GroupMember.join({ controlChannel: 'ctrl', replyChannel: 'reply' });
member.on('role', ({ role, epoch }) => console.log(`${member.name} is ${role} (epoch ${epoch})`));
process.on('SIGTERM', () => (member.leave(), process.exit(0)));
setInterval(() => member.isPrimary() && console.log(`${member.name} serving`), 1000);
