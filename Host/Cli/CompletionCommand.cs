using System.CommandLine;

namespace ActorNvme.Host.Cli;

/// <summary>
/// <c>actornvme completion bash|zsh</c>: a shell completion script. The script asks the program itself
/// (System.CommandLine's <c>[suggest:POSITION]</c> directive) for what fits at the cursor, so it never
/// falls behind the commands and options of the build it runs.
/// </summary>
internal static class CompletionCommand
{
    public static Command Create()
    {
        var shell = new Argument<string>("shell") { Description = "bash or zsh" };
        shell.AcceptOnlyFromAmong("bash", "zsh");
        var command = new Command("completion", "Print a shell completion script: eval \"$(actornvme completion bash)\"") { shell };
        command.SetAction(async (parse, _) =>
        {
            await Console.Out.WriteAsync(Script(parse.GetValue(shell)!)).ConfigureAwait(false);
            return 0;
        });
        return command;
    }

    internal static string Script(string shell) => shell switch
    {
        "bash" => """
            # actornvme bash completion: eval "$(actornvme completion bash)"
            _actornvme_complete() {
              local IFS=$'\n'
              COMPREPLY=($(compgen -W "$(actornvme "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null)" -- "${COMP_WORDS[COMP_CWORD]}"))
            }
            complete -o default -F _actornvme_complete actornvme

            """,
        "zsh" => """
            # actornvme zsh completion: eval "$(actornvme completion zsh)"
            _actornvme_complete() {
              local -a candidates
              candidates=("${(@f)$(actornvme "[suggest:${#BUFFER}]" "${BUFFER}" 2>/dev/null)}")
              compadd -- $candidates
            }
            compdef _actornvme_complete actornvme

            """,
        _ => throw new ArgumentOutOfRangeException(nameof(shell), shell, "bash or zsh"),
    };
}
