/**
 * JSON Schemas of the OCI runtime config (linux part and the definitions it references), verbatim.
 * Origin: opencontainers/runtime-spec schema/ @ 6999a89a76a0329f440d5740497bedb9dd431297, Apache-2.0
 * (copies at ../shared/reference/oci-runtime-spec/schema/; a test checks these still equal them).
 */
export const OCI_SCHEMAS: Record<string, Record<string, unknown>> = {
  "config-linux.json": {
    "linux": {
      "description": "Linux platform-specific configurations",
      "type": "object",
      "properties": {
        "devices": {
          "type": "array",
          "items": {
            "$ref": "defs-linux.json#/definitions/Device"
          }
        },
        "netDevices": {
          "type": "object",
          "additionalProperties": {
            "$ref": "defs-linux.json#/definitions/NetDevice"
          }
        },
        "uidMappings": {
          "type": "array",
          "items": {
            "$ref": "defs.json#/definitions/IDMapping"
          }
        },
        "gidMappings": {
          "type": "array",
          "items": {
            "$ref": "defs.json#/definitions/IDMapping"
          }
        },
        "namespaces": {
          "type": "array",
          "items": {
            "anyOf": [
              {
                "$ref": "defs-linux.json#/definitions/NamespaceReference"
              }
            ]
          }
        },
        "resources": {
          "type": "object",
          "properties": {
            "unified": {
              "$ref": "defs.json#/definitions/mapStringString"
            },
            "devices": {
              "type": "array",
              "items": {
                "$ref": "defs-linux.json#/definitions/DeviceCgroup"
              }
            },
            "pids": {
              "type": "object",
              "properties": {
                "limit": {
                  "$ref": "defs.json#/definitions/int64"
                }
              },
              "required": [
                "limit"
              ]
            },
            "blockIO": {
              "type": "object",
              "properties": {
                "weight": {
                  "$ref": "defs-linux.json#/definitions/weight"
                },
                "leafWeight": {
                  "$ref": "defs-linux.json#/definitions/weight"
                },
                "throttleReadBpsDevice": {
                  "type": "array",
                  "items": {
                    "$ref": "defs-linux.json#/definitions/blockIODeviceThrottle"
                  }
                },
                "throttleWriteBpsDevice": {
                  "type": "array",
                  "items": {
                    "$ref": "defs-linux.json#/definitions/blockIODeviceThrottle"
                  }
                },
                "throttleReadIOPSDevice": {
                  "type": "array",
                  "items": {
                    "$ref": "defs-linux.json#/definitions/blockIODeviceThrottle"
                  }
                },
                "throttleWriteIOPSDevice": {
                  "type": "array",
                  "items": {
                    "$ref": "defs-linux.json#/definitions/blockIODeviceThrottle"
                  }
                },
                "weightDevice": {
                  "type": "array",
                  "items": {
                    "$ref": "defs-linux.json#/definitions/blockIODeviceWeight"
                  }
                }
              }
            },
            "cpu": {
              "type": "object",
              "properties": {
                "cpus": {
                  "type": "string"
                },
                "mems": {
                  "type": "string"
                },
                "period": {
                  "$ref": "defs.json#/definitions/uint64"
                },
                "quota": {
                  "$ref": "defs.json#/definitions/int64"
                },
                "burst": {
                  "$ref": "defs.json#/definitions/uint64"
                },
                "realtimePeriod": {
                  "$ref": "defs.json#/definitions/uint64"
                },
                "realtimeRuntime": {
                  "$ref": "defs.json#/definitions/int64"
                },
                "shares": {
                  "$ref": "defs.json#/definitions/uint64"
                },
                "idle": {
                  "$ref": "defs.json#/definitions/int64"
                }
              }
            },
            "hugepageLimits": {
              "type": "array",
              "items": {
                "type": "object",
                "properties": {
                  "pageSize": {
                    "type": "string",
                    "pattern": "^[1-9][0-9]*[KMG]B$"
                  },
                  "limit": {
                    "$ref": "defs.json#/definitions/uint64"
                  }
                },
                "required": [
                  "pageSize",
                  "limit"
                ]
              }
            },
            "memory": {
              "type": "object",
              "properties": {
                "kernel": {
                  "$ref": "defs.json#/definitions/int64"
                },
                "kernelTCP": {
                  "$ref": "defs.json#/definitions/int64"
                },
                "limit": {
                  "$ref": "defs.json#/definitions/int64"
                },
                "reservation": {
                  "$ref": "defs.json#/definitions/int64"
                },
                "swap": {
                  "$ref": "defs.json#/definitions/int64"
                },
                "swappiness": {
                  "$ref": "defs.json#/definitions/uint64"
                },
                "disableOOMKiller": {
                  "type": "boolean"
                },
                "useHierarchy": {
                  "type": "boolean"
                },
                "checkBeforeUpdate": {
                  "type": "boolean"
                }
              }
            },
            "network": {
              "type": "object",
              "properties": {
                "classID": {
                  "$ref": "defs.json#/definitions/uint32"
                },
                "priorities": {
                  "type": "array",
                  "items": {
                    "$ref": "defs-linux.json#/definitions/NetworkInterfacePriority"
                  }
                }
              }
            },
            "rdma": {
              "type": "object",
              "additionalProperties": {
                "$ref": "defs-linux.json#/definitions/Rdma"
              }
            }
          }
        },
        "cgroupsPath": {
          "type": "string"
        },
        "rootfsPropagation": {
          "$ref": "defs-linux.json#/definitions/RootfsPropagation"
        },
        "seccomp": {
          "type": "object",
          "properties": {
            "defaultAction": {
              "$ref": "defs-linux.json#/definitions/SeccompAction"
            },
            "defaultErrnoRet": {
              "$ref": "defs.json#/definitions/uint32"
            },
            "flags": {
              "type": "array",
              "items": {
                "$ref": "defs-linux.json#/definitions/SeccompFlag"
              }
            },
            "listenerPath": {
              "type": "string"
            },
            "listenerMetadata": {
              "type": "string"
            },
            "architectures": {
              "type": "array",
              "items": {
                "$ref": "defs-linux.json#/definitions/SeccompArch"
              }
            },
            "syscalls": {
              "type": "array",
              "items": {
                "$ref": "defs-linux.json#/definitions/Syscall"
              }
            }
          },
          "required": [
            "defaultAction"
          ]
        },
        "sysctl": {
          "$ref": "defs.json#/definitions/mapStringString"
        },
        "maskedPaths": {
          "$ref": "defs.json#/definitions/ArrayOfStrings"
        },
        "readonlyPaths": {
          "$ref": "defs.json#/definitions/ArrayOfStrings"
        },
        "mountLabel": {
          "type": "string"
        },
        "intelRdt": {
          "type": "object",
          "properties": {
            "closID": {
              "type": "string"
            },
            "schemata": {
              "$ref": "defs.json#/definitions/ArrayOfStrings"
            },
            "l3CacheSchema": {
              "type": "string"
            },
            "memBwSchema": {
              "type": "string",
              "pattern": "^MB:[^\\n]*$"
            },
            "enableMonitoring": {
              "type": "boolean"
            }
          }
        },
        "memoryPolicy": {
          "type": "object",
          "properties": {
            "mode": {
              "$ref": "defs-linux.json#/definitions/MemoryPolicyMode"
            },
            "nodes": {
              "type": "string"
            },
            "flags": {
              "type": "array",
              "items": {
                "$ref": "defs-linux.json#/definitions/MemoryPolicyFlag"
              }
            }
          }
        },
        "personality": {
          "type": "object",
          "$ref": "defs-linux.json#/definitions/Personality"
        },
        "timeOffsets": {
          "type": "object",
          "properties": {
            "boottime": {
              "$ref": "defs-linux.json#/definitions/TimeOffsets"
            },
            "monotonic": {
              "$ref": "defs-linux.json#/definitions/TimeOffsets"
            }
          }
        }
      }
    }
  },
  "defs-linux.json": {
    "definitions": {
      "PersonalityDomain": {
        "type": "string",
        "enum": [
          "LINUX",
          "LINUX32"
        ]
      },
      "Personality": {
        "type": "object",
        "properties": {
          "domain": {
            "$ref": "#/definitions/PersonalityDomain"
          },
          "flags": {
            "$ref": "defs.json#/definitions/ArrayOfStrings"
          }
        }
      },
      "RootfsPropagation": {
        "type": "string",
        "enum": [
          "private",
          "shared",
          "slave",
          "unbindable"
        ]
      },
      "SeccompArch": {
        "type": "string",
        "enum": [
          "SCMP_ARCH_X86",
          "SCMP_ARCH_X86_64",
          "SCMP_ARCH_X32",
          "SCMP_ARCH_ARM",
          "SCMP_ARCH_AARCH64",
          "SCMP_ARCH_LOONGARCH64",
          "SCMP_ARCH_M68K",
          "SCMP_ARCH_MIPS",
          "SCMP_ARCH_MIPS64",
          "SCMP_ARCH_MIPS64N32",
          "SCMP_ARCH_MIPSEL",
          "SCMP_ARCH_MIPSEL64",
          "SCMP_ARCH_MIPSEL64N32",
          "SCMP_ARCH_PPC",
          "SCMP_ARCH_PPC64",
          "SCMP_ARCH_PPC64LE",
          "SCMP_ARCH_S390",
          "SCMP_ARCH_S390X",
          "SCMP_ARCH_SH",
          "SCMP_ARCH_SHEB",
          "SCMP_ARCH_PARISC",
          "SCMP_ARCH_PARISC64",
          "SCMP_ARCH_RISCV64"
        ]
      },
      "SeccompAction": {
        "type": "string",
        "enum": [
          "SCMP_ACT_KILL",
          "SCMP_ACT_KILL_PROCESS",
          "SCMP_ACT_KILL_THREAD",
          "SCMP_ACT_TRAP",
          "SCMP_ACT_ERRNO",
          "SCMP_ACT_TRACE",
          "SCMP_ACT_ALLOW",
          "SCMP_ACT_LOG",
          "SCMP_ACT_NOTIFY"
        ]
      },
      "SeccompFlag": {
        "type": "string",
        "enum": [
          "SECCOMP_FILTER_FLAG_TSYNC",
          "SECCOMP_FILTER_FLAG_LOG",
          "SECCOMP_FILTER_FLAG_SPEC_ALLOW",
          "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"
        ]
      },
      "SeccompOperators": {
        "type": "string",
        "enum": [
          "SCMP_CMP_NE",
          "SCMP_CMP_LT",
          "SCMP_CMP_LE",
          "SCMP_CMP_EQ",
          "SCMP_CMP_GE",
          "SCMP_CMP_GT",
          "SCMP_CMP_MASKED_EQ"
        ]
      },
      "SyscallArg": {
        "type": "object",
        "properties": {
          "index": {
            "$ref": "defs.json#/definitions/uint32"
          },
          "value": {
            "$ref": "defs.json#/definitions/uint64"
          },
          "valueTwo": {
            "$ref": "defs.json#/definitions/uint64"
          },
          "op": {
            "$ref": "#/definitions/SeccompOperators"
          }
        },
        "required": [
          "index",
          "value",
          "op"
        ]
      },
      "Syscall": {
        "type": "object",
        "properties": {
          "names": {
            "type": "array",
            "items": {
              "type": "string"
            },
            "minItems": 1
          },
          "action": {
            "$ref": "#/definitions/SeccompAction"
          },
          "errnoRet": {
            "$ref": "defs.json#/definitions/uint32"
          },
          "args": {
            "type": "array",
            "items": {
              "$ref": "#/definitions/SyscallArg"
            }
          }
        },
        "required": [
          "names",
          "action"
        ]
      },
      "Major": {
        "description": "major device number",
        "$ref": "defs.json#/definitions/int64"
      },
      "Minor": {
        "description": "minor device number",
        "$ref": "defs.json#/definitions/int64"
      },
      "FileType": {
        "description": "Type of a block or special character device",
        "type": "string",
        "pattern": "^[cbup]$"
      },
      "Device": {
        "type": "object",
        "required": [
          "type",
          "path"
        ],
        "properties": {
          "type": {
            "$ref": "#/definitions/FileType"
          },
          "path": {
            "$ref": "defs.json#/definitions/FilePath"
          },
          "fileMode": {
            "$ref": "defs.json#/definitions/FileMode"
          },
          "major": {
            "$ref": "#/definitions/Major"
          },
          "minor": {
            "$ref": "#/definitions/Minor"
          },
          "uid": {
            "$ref": "defs.json#/definitions/UID"
          },
          "gid": {
            "$ref": "defs.json#/definitions/GID"
          }
        }
      },
      "NetDevice": {
        "type": "object",
        "properties": {
          "name": {
            "type": "string"
          }
        }
      },
      "weight": {
        "$ref": "defs.json#/definitions/uint16"
      },
      "blockIODevice": {
        "type": "object",
        "properties": {
          "major": {
            "$ref": "#/definitions/Major"
          },
          "minor": {
            "$ref": "#/definitions/Minor"
          }
        },
        "required": [
          "major",
          "minor"
        ]
      },
      "blockIODeviceWeight": {
        "type": "object",
        "allOf": [
          {
            "$ref": "#/definitions/blockIODevice"
          },
          {
            "type": "object",
            "properties": {
              "weight": {
                "$ref": "#/definitions/weight"
              },
              "leafWeight": {
                "$ref": "#/definitions/weight"
              }
            }
          }
        ]
      },
      "blockIODeviceThrottle": {
        "allOf": [
          {
            "$ref": "#/definitions/blockIODevice"
          },
          {
            "type": "object",
            "properties": {
              "rate": {
                "$ref": "defs.json#/definitions/uint64"
              }
            }
          }
        ]
      },
      "DeviceCgroup": {
        "type": "object",
        "properties": {
          "allow": {
            "type": "boolean"
          },
          "type": {
            "type": "string"
          },
          "major": {
            "$ref": "#/definitions/Major"
          },
          "minor": {
            "$ref": "#/definitions/Minor"
          },
          "access": {
            "type": "string"
          }
        },
        "required": [
          "allow"
        ]
      },
      "MemoryPolicyMode": {
        "type": "string",
        "enum": [
          "MPOL_DEFAULT",
          "MPOL_BIND",
          "MPOL_INTERLEAVE",
          "MPOL_WEIGHTED_INTERLEAVE",
          "MPOL_PREFERRED",
          "MPOL_PREFERRED_MANY",
          "MPOL_LOCAL"
        ]
      },
      "MemoryPolicyFlag": {
        "type": "string",
        "enum": [
          "MPOL_F_NUMA_BALANCING",
          "MPOL_F_RELATIVE_NODES",
          "MPOL_F_STATIC_NODES"
        ]
      },
      "NetworkInterfacePriority": {
        "type": "object",
        "properties": {
          "name": {
            "type": "string"
          },
          "priority": {
            "$ref": "defs.json#/definitions/uint32"
          }
        },
        "required": [
          "name",
          "priority"
        ]
      },
      "Rdma": {
        "type": "object",
        "properties": {
          "hcaHandles": {
            "$ref": "defs.json#/definitions/uint32"
          },
          "hcaObjects": {
            "$ref": "defs.json#/definitions/uint32"
          }
        }
      },
      "NamespaceType": {
        "type": "string",
        "enum": [
          "mount",
          "pid",
          "network",
          "uts",
          "ipc",
          "user",
          "cgroup",
          "time"
        ]
      },
      "NamespaceReference": {
        "type": "object",
        "properties": {
          "type": {
            "$ref": "#/definitions/NamespaceType"
          },
          "path": {
            "$ref": "defs.json#/definitions/FilePath"
          }
        },
        "required": [
          "type"
        ]
      },
      "TimeOffsets": {
        "type": "object",
        "properties": {
          "secs": {
            "$ref": "defs.json#/definitions/int64"
          },
          "nanosecs": {
            "$ref": "defs.json#/definitions/uint32"
          }
        }
      },
      "SchedulerPolicy": {
        "type": "string",
        "enum": [
          "SCHED_OTHER",
          "SCHED_FIFO",
          "SCHED_RR",
          "SCHED_BATCH",
          "SCHED_ISO",
          "SCHED_IDLE",
          "SCHED_DEADLINE"
        ]
      },
      "SchedulerFlag": {
        "type": "string",
        "enum": [
          "SCHED_FLAG_RESET_ON_FORK",
          "SCHED_FLAG_RECLAIM",
          "SCHED_FLAG_DL_OVERRUN",
          "SCHED_FLAG_KEEP_POLICY",
          "SCHED_FLAG_KEEP_PARAMS",
          "SCHED_FLAG_UTIL_CLAMP_MIN",
          "SCHED_FLAG_UTIL_CLAMP_MAX"
        ]
      }
    }
  },
  "defs.json": {
    "description": "Definitions used throughout the Open Container Initiative Runtime Specification",
    "definitions": {
      "int8": {
        "type": "integer",
        "minimum": -128,
        "maximum": 127
      },
      "int16": {
        "type": "integer",
        "minimum": -32768,
        "maximum": 32767
      },
      "int32": {
        "type": "integer",
        "minimum": -2147483648,
        "maximum": 2147483647
      },
      "int64": {
        "type": "integer",
        "minimum": -9223372036854776000,
        "maximum": 9223372036854776000
      },
      "uint8": {
        "type": "integer",
        "minimum": 0,
        "maximum": 255
      },
      "uint16": {
        "type": "integer",
        "minimum": 0,
        "maximum": 65535
      },
      "uint32": {
        "type": "integer",
        "minimum": 0,
        "maximum": 4294967295
      },
      "uint64": {
        "type": "integer",
        "minimum": 0,
        "maximum": 18446744073709552000
      },
      "percent": {
        "type": "integer",
        "minimum": 0,
        "maximum": 100
      },
      "mapStringString": {
        "type": "object",
        "patternProperties": {
          ".{1,}": {
            "type": "string"
          }
        }
      },
      "UID": {
        "$ref": "#/definitions/uint32"
      },
      "GID": {
        "$ref": "#/definitions/uint32"
      },
      "Umask": {
        "$ref": "#/definitions/uint32"
      },
      "ArrayOfGIDs": {
        "type": "array",
        "items": {
          "$ref": "#/definitions/GID"
        }
      },
      "ArrayOfStrings": {
        "type": "array",
        "items": {
          "type": "string"
        }
      },
      "ArrayOfUint32": {
        "type": "array",
        "items": {
          "$ref": "#/definitions/uint32"
        }
      },
      "FileMode": {
        "description": "File permissions mode (in decimal, not octal)",
        "type": "integer",
        "minimum": 0,
        "maximum": 511
      },
      "FilePath": {
        "type": "string"
      },
      "Env": {
        "$ref": "#/definitions/ArrayOfStrings"
      },
      "Hook": {
        "type": "object",
        "properties": {
          "path": {
            "$ref": "#/definitions/FilePath"
          },
          "args": {
            "$ref": "#/definitions/ArrayOfStrings"
          },
          "env": {
            "$ref": "#/definitions/Env"
          },
          "timeout": {
            "type": "integer",
            "minimum": 1
          }
        },
        "required": [
          "path"
        ]
      },
      "ArrayOfHooks": {
        "type": "array",
        "items": {
          "$ref": "#/definitions/Hook"
        }
      },
      "IDMapping": {
        "type": "object",
        "properties": {
          "containerID": {
            "$ref": "#/definitions/uint32"
          },
          "hostID": {
            "$ref": "#/definitions/uint32"
          },
          "size": {
            "$ref": "#/definitions/uint32"
          }
        },
        "required": [
          "containerID",
          "hostID",
          "size"
        ]
      },
      "Mount": {
        "type": "object",
        "properties": {
          "source": {
            "$ref": "#/definitions/FilePath"
          },
          "destination": {
            "$ref": "#/definitions/FilePath"
          },
          "options": {
            "$ref": "#/definitions/ArrayOfStrings"
          },
          "type": {
            "type": "string"
          },
          "uidMappings": {
            "type": "array",
            "items": {
              "$ref": "#/definitions/IDMapping"
            }
          },
          "gidMappings": {
            "type": "array",
            "items": {
              "$ref": "#/definitions/IDMapping"
            }
          }
        },
        "required": [
          "destination"
        ]
      },
      "ociVersion": {
        "description": "The version of Open Container Initiative Runtime Specification that the document complies with",
        "type": "string"
      },
      "annotations": {
        "$ref": "#/definitions/mapStringString"
      }
    }
  }
};
