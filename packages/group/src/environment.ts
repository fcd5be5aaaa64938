// The environment contract lives in @libipc/process (one definition for groups and supervisors).
export { ENV, instanceName, readInstanceContext, type InstanceContext } from '@libipc/process';
