/* Private to sdk/lib (expo*.c, relabel*.c). */
#ifndef STARLING_RELABEL_LSET_H
#define STARLING_RELABEL_LSET_H

#include <starling/relabel.h>

/* starling_lset_append() for a caller that has already checked that the
 * name is non-empty and neither string contains a NUL byte. */
int lset_append_checked(struct starling_lset *ls, const char *name, size_t name_len,
			const char *value, size_t value_len);

#endif
