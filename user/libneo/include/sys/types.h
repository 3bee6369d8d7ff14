/* sys/types.h - basic types for NeoOS programs (LP64). */
#ifndef NEO_SYS_TYPES_H
#define NEO_SYS_TYPES_H

#ifndef NULL
#define NULL ((void *)0)
#endif

typedef unsigned long size_t;
typedef long ssize_t;
typedef long off_t;
typedef int pid_t;
typedef int key_t;
typedef long time_t;
typedef char *caddr_t;
typedef unsigned long uintptr_t;
typedef long intptr_t;

typedef unsigned char uint8_t;
typedef unsigned short uint16_t;
typedef unsigned int uint32_t;
typedef unsigned long uint64_t;
typedef signed char int8_t;
typedef short int16_t;
typedef int int32_t;
typedef long int64_t;

#endif
