# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# bash completion for ksteer: commands and subcommands; flags as `ksteer CMD [SUB] --help`
# prints them, so they follow the binary; instances from the pins and control sockets.
# Install: cp doc/ksteer.bash /usr/share/bash-completion/completions/ksteer

_ksteer_instances()
{
	local d
	for d in /sys/fs/bpf/ksteer/*/ /run/ksteer/*.sock; do
		[ -e "$d" ] || continue
		d=${d%/}
		d=${d%.sock}
		echo "${d##*/}"
	done | sort -u
}

_ksteer()
{
	local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
	local bin=${COMP_WORDS[0]} cmd="" sub="" i w
	local cmds="check explain agent apply status get uninstall sockmap splice cert lab version help"

	COMPREPLY=()

	for ((i = 1; i < COMP_CWORD; i++)); do
		w=${COMP_WORDS[i]}
		[ "$w" = -- ] && return 0 # lab exec CLUSTER NS/NAME -- CMD
		[[ $w == -* ]] && continue
		if [ -z "$cmd" ]; then
			cmd=$w
		elif [ -z "$sub" ] && [[ " cert lab get " == *" $cmd "* ]]; then
			case ${COMP_WORDS[i - 1]} in
			-i | --instance | -o | --output | -f | --file) ;; # an option's value
			*) sub=$w ;;
			esac
		fi
	done
	case $prev in
	-i | --instance)
		COMPREPLY=($(compgen -W "$(_ksteer_instances)" -- "$cur"))
		return 0 ;;
	-f | --filename | --file | --policy | --ca | --out | --root | --ready-file | --access-log | --kubeconfig)
		compopt -o filenames 2>/dev/null
		COMPREPLY=($(compgen -f -- "$cur"))
		return 0 ;;
	-o | --output) COMPREPLY=($(compgen -W "text json" -- "$cur")); return 0 ;;
	--sockmap | --splice) [ "$cmd" = agent ] && COMPREPLY=($(compgen -W "on off" -- "$cur")); return 0 ;;
	--xdp-mode) COMPREPLY=($(compgen -W "auto native generic" -- "$cur")); return 0 ;;
	--sni-form) COMPREPLY=($(compgen -W "global local" -- "$cur")); return 0 ;;
	--xdp-dev) COMPREPLY=($(compgen -W "$(ls /sys/class/net 2>/dev/null)" -- "$cur")); return 0 ;;
	esac
	if [ -z "$cmd" ]; then
		COMPREPLY=($(compgen -W "$cmds -h --help --version -v" -- "$cur"))
		return 0
	fi
	if [[ $cur == -* ]]; then
		# the flags of the usage the binary prints for this command
		COMPREPLY=($(compgen -W "$("$bin" $cmd $sub --help 2>/dev/null |
			grep -oE '(^|[][ |])--?[a-z][a-z-]*' | grep -oE -- '--?[a-z][a-z-]*' | sort -u) --help" -- "$cur"))
		return 0
	fi
	case $cmd in
	cert) [ -z "$sub" ] && COMPREPLY=($(compgen -W "root intermediate mint" -- "$cur")) ;;
	lab) [ -z "$sub" ] && COMPREPLY=($(compgen -W "up apply exec env kubeconfig api status down" -- "$cur")) ;;
	get) [ -z "$sub" ] && COMPREPLY=($(compgen -W "frontends routes endpoints stats" -- "$cur")) ;;
	sockmap | splice) COMPREPLY=($(compgen -W "on off" -- "$cur")) ;;
	help) COMPREPLY=($(compgen -W "$cmds" -- "$cur")) ;;
	esac
	return 0
}
# nothing of ours to offer (check's paths, exec's command): bash's own completion
complete -o default -F _ksteer ksteer
