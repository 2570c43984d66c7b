/* Private to sdk/lib/relabel*.c. */
#ifndef STARLING_RELABEL_MD5_H
#define STARLING_RELABEL_MD5_H

#include <stddef.h>
#include <stdint.h>

/* MD5 digest of data[0, len) into out. Pure, thread-safe. */
void relabel_md5(const void *data, size_t len, unsigned char out[16]);

#endif
