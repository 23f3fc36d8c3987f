/*
 * ipc_types.c - names of the IPC messages in ipc_types.h, for tracing.
 *
 * Owns: the name table; keep it in step with enum ipc_type.
 * SECURITY: none (pure data).
 * STANDARDS: none.
 */
#include "config.h"

#include <stddef.h>

#include "ipc_types.h"

#define NAME(t) [t] = #t

static const char *const ipc_names[IPC_TYPE_MAX] = {
	NAME(IPC_NONE),
	NAME(IPC_CHILD_STOP),
	NAME(IPC_CHILD_QUEUE_LINK),
	NAME(IPC_QUEUED_NEW_LINK),
	NAME(IPC_MASTER_READY),
	NAME(IPC_MASTER_LINK_BROKEN),
	NAME(IPC_QUEUED_MSG_OPEN),
	NAME(IPC_SMTPD_MSG_OPENED),
	NAME(IPC_QUEUED_MSG_COMMIT),
	NAME(IPC_SMTPD_MSG_COMMITTED),
	NAME(IPC_QUEUED_MSG_ABORT),
	NAME(IPC_DELIVERY_JOB),
	NAME(IPC_QUEUED_JOB_RESULT),
	NAME(IPC_HTTPD_EVENT),
	NAME(IPC_QUEUED_CTL_REQUEST),
	NAME(IPC_CTL_ROW),
	NAME(IPC_CTL_DONE),
};

/* ipc_type_name - the enum name of type, "IPC_?" if unknown */
const char *
ipc_type_name(unsigned type)
{
	if (type >= IPC_TYPE_MAX || ipc_names[type] == NULL)
		return "IPC_?";
	return ipc_names[type];
}
