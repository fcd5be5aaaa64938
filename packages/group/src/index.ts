export { ServiceGroup, type ManagedInstance, type Role, type FailoverEvent, type GroupReloadReport } from './service-group.js';
export { GroupMember, type JoinOptions, type MemberRole } from './group-member.js';
export { DEFAULT_GROUP_RESTART, type GroupConfig } from './config.js';
export { ENV as GROUP_ENV, readInstanceContext, instanceName, type InstanceContext } from './environment.js';
